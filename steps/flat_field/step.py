"""FlatFieldStep: plugin over :func:`steps.flat_field.flat.apply_flat_field` (imaging)."""
from __future__ import annotations

import numpy as np

from runner import Step, StepParameters
from runner.errors import InputError, ReferenceFileError

from .flat import apply_flat_field


class FlatFieldParameters(StepParameters):
    """Parameters of flat_field (none beyond the common ones)."""


class FlatFieldStep(Step):
    """Divide count rates by the FLAT reference; propagate its DQ and error into VAR_FLAT."""

    alias = "flat_field"
    class_name = "FlatFieldStep"
    Parameters = FlatFieldParameters
    reference_types = ("flat",)
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_FLAT"
    chunking = "integrations"  # one flat divides every frame

    def process(self, product):
        if product.kind not in ("image", "cube"):
            raise InputError(f"{product.filename}: flat_field takes a rate (image) or rateints (cube) "
                             f"product, this is a {product.kind} product")
        ref = self.reference("flat")
        flat = ref.array("SCI", product)
        if flat.ndim != 2:
            raise ReferenceFileError(f"{ref.path}: FLAT SCI has shape {tuple(flat.shape)}; an imaging flat is 2-D")
        for key in ("FILTER", "PUPIL"):
            want, have = product.get(key), ref.get(key)
            if want is not None and have not in (None, "N/A", "ANY") and str(want).upper() != str(have).upper():
                self.log.warning("%s: FLAT is for %s=%s, the exposure has %s", ref.name, key, have, want)
        out = apply_flat_field(product.data, _dq(product), flat, ref.dq(product),
                               ref.array("ERR", product, required=False),
                               var_poisson=product.var_poisson, var_rnoise=product.var_rnoise,
                               err=product.err)
        for name, arr in out.items():
            product.arrays[name] = arr
        nbad = int(np.count_nonzero(out["DQ"][..., :, :] & (1 << 18)))
        self.log.info("flat-fielded with %s; %d pixel(s) with NO_FLAT_FIELD", ref.name, nbad)
        return product


def _dq(product):
    dq = product.dq
    if dq is None:
        dq = np.zeros(product.data.shape, np.uint32)
    return dq
