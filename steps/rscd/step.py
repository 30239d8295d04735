"""RscdStep: plugin over :func:`steps.rscd.baseline.flag_rscd_groups` (jwst 'baseline')."""
from pydantic import Field

from runner import SkipStep, Step, StepParameters

from .baseline import flag_rscd_groups



class RscdParameters(StepParameters):
    """Parameters of rscd."""

    bright_use_group1: bool = Field(False, description="Do not flag pixels that would keep fewer "
                                                       "than two unsaturated groups.")


def groups_to_skip(ref, product):
    """Number of initial groups to flag, from the RSCD reference.

    Looks for a table with a GROUP_SKIP column (rows matched on SUBARRAY and READPATT when those
    columns exist, 'GENERIC'/'ANY'/'N/A' matching anything), then a GROUP_SKIP header keyword.
    Returns None when neither is present.
    """
    subarray = str(product.get("SUBARRAY", "")).strip().upper()
    readpatt = str(product.get("READPATT", "")).strip().upper()
    wild = {"GENERIC", "ANY", "N/A", ""}
    for table in ref.tables.values():
        if table is None or table.dtype.names is None:
            continue
        names = {n.upper(): n for n in table.dtype.names}
        if "GROUP_SKIP" not in names:
            continue
        for row in table:
            ok = True
            for col, value in (("SUBARRAY", subarray), ("READPATT", readpatt)):
                if col in names:
                    cell = row[names[col]]
                    cell = (cell.decode() if isinstance(cell, bytes) else str(cell)).strip().upper()
                    ok &= cell in wild or cell == value
            if ok:
                return int(row[names["GROUP_SKIP"]])
    value = ref.get("GROUP_SKIP")
    return None if value is None else int(value)


class RscdStep(Step):
    """MIRI: flag the first groups of integrations 2+ (reset switch charge decay)."""

    alias = "rscd"
    class_name = "RscdStep"
    Parameters = RscdParameters
    reference_types = ("rscd",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_RSCD"
    chunking = None  # flags integrations 2+ only: depends on the integration index

    def process(self, product):
        product.conform()
        ref = self.reference("rscd")
        n = groups_to_skip(ref, product)
        if n is None:
            raise SkipStep(f"{ref.name}: no GROUP_SKIP for SUBARRAY/READPATT of this exposure")
        if not flag_rscd_groups(product.groupdq, n, bright_use_group1=self.params.bright_use_group1):
            raise SkipStep(f"nothing to flag (nints = {product.data.shape[0]}, "
                           f"ngroups = {product.data.shape[1]}, GROUP_SKIP = {n})")
        return product
