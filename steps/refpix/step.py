"""RefPixStep: plugin over :mod:`steps.refpix.reference_pixels` (non-IRS2 algorithms)."""
from pydantic import Field

from runner import SkipStep, Step, StepParameters

from .reference_pixels import correct_miri, correct_nir

_MIRI_FULL = (1024, 1032)
_NIR_FULL = (2048, 2048)



class RefPixParameters(StepParameters):
    """Parameters of refpix."""

    odd_even_columns: bool = Field(True, description="NIR: separate means for even and odd columns.")
    use_side_ref_pixels: bool = Field(True, description="NIR: subtract the smoothed side reference "
                                                        "signal row by row.")
    side_smoothing_length: int = Field(11, ge=1, description="NIR: running-median height (rows) "
                                                             "of the side signal.")
    side_gain: float = Field(1.0, description="NIR: factor applied to the side signal.")
    odd_even_rows: bool = Field(True, description="MIRI: separate means for even and odd rows.")


class RefPixStep(Step):
    """Reference-pixel correction of amplifier drifts and row (1/f) noise."""

    alias = "refpix"
    class_name = "RefPixStep"
    Parameters = RefPixParameters
    reference_types = ()
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_REFPIX"
    chunking = "integrations"  # needs whole frames (reference rows/columns, side running median), each group alone

    def process(self, product):
        product.conform()
        p = self.params
        if "IRS2" in str(product.get("READPATT", "")).upper():
            raise SkipStep("NIRSpec IRS2 reference-pixel correction is not implemented")
        if str(product.get("INSTRUME", "")).upper() == "MIRI":
            info = correct_miri(product.data, product.pixeldq, odd_even_rows=p.odd_even_rows,
                                full_shape=_MIRI_FULL)
        else:
            noutputs = product.get("NOUTPUTS")
            info = correct_nir(
                product.data, product.pixeldq,
                xstart=int(product.get("SUBSTRT1", 1) or 1),
                ystart=int(product.get("SUBSTRT2", 1) or 1),
                full_shape=_NIR_FULL, noutputs=int(noutputs) if noutputs else None,
                fastaxis=int(product.get("FASTAXIS", 1) or 1),
                slowaxis=int(product.get("SLOWAXIS", 2) or 2),
                odd_even_columns=p.odd_even_columns, use_side_ref_pixels=p.use_side_ref_pixels,
                side_smoothing_length=p.side_smoothing_length, side_gain=p.side_gain)
        if not info["applied"]:
            raise SkipStep(info["reason"])
        return product
