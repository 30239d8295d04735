"""GainScaleStep: plugin over :func:`steps.gain_scale.gain_factor.scale_by_gain_factor`."""
import numpy as np
from runner import SkipStep, Step, StepParameters

from .gain_factor import scale_by_gain_factor


class GainScaleParameters(StepParameters):
    """Parameters of gain_scale (none beyond the common ones)."""


class GainScaleStep(Step):
    """Rescale count rates by the gain reference's GAINFACT."""

    alias = "gain_scale"
    class_name = "GainScaleStep"
    Parameters = GainScaleParameters
    reference_types = ("gain",)
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_GANSCL"
    chunking = "rows"  # pixel by pixel, any product kind

    def process(self, product):
        ref = self.reference("gain")
        factor = ref.get("GAINFACT")
        if factor is None:
            raise SkipStep("gain reference has no GAINFACT")
        for ext in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            if product.arrays.get(ext) is not None:
                product.arrays[ext] = np.asarray(product.arrays[ext], dtype=np.float32)
        applied = scale_by_gain_factor(product.data, product.err, gain_factor=factor,
                                       var_poisson=product.var_poisson,
                                       var_rnoise=product.var_rnoise, var_flat=product.var_flat)
        if applied == 1.0:
            raise SkipStep(f"GAINFACT = {factor}: nothing to do")
        product.meta["GAINFACT"] = (float(applied), "Gain scale factor applied")
        return product
