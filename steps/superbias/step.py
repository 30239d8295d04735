"""SuperBiasStep: plugin over :func:`steps.superbias.bias_subtraction.subtract_bias`."""
import numpy as np
from runner import Step, StepParameters

from .bias_subtraction import subtract_bias


def _native_ramp(product):
    """Make SCI/PIXELDQ/GROUPDQ native-byte-order arrays (FITS gives big-endian; numba needs native)."""
    product.data = np.asarray(product.data, dtype=np.float32)
    if product.pixeldq is not None:
        product.pixeldq = np.asarray(product.pixeldq, dtype=np.uint32)
    if product.groupdq is not None:
        product.groupdq = np.asarray(product.groupdq, dtype=np.uint8)


class SuperBiasParameters(StepParameters):
    """Parameters of superbias (none beyond the common ones)."""


class SuperBiasStep(Step):
    """Subtract the superbias from every group."""

    alias = "superbias"
    class_name = "SuperBiasStep"
    Parameters = SuperBiasParameters
    reference_types = ("superbias",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_SUPERB"
    chunking = "integrations"  # one bias frame subtracted from every group

    def process(self, product):
        _native_ramp(product)
        ref = self.reference("superbias")
        subtract_bias(product.data, product.pixeldq, ref.array("SCI", product), ref.dq(product))
        return product
