"""ResetStep: plugin over :func:`steps.reset.reset_subtraction.subtract_reset`."""
import numpy as np
from runner import Step, StepParameters

from .reset_subtraction import subtract_reset


def _native_ramp(product):
    """Make SCI/PIXELDQ/GROUPDQ native-byte-order arrays (FITS gives big-endian; numba needs native)."""
    product.data = np.asarray(product.data, dtype=np.float32)
    if product.pixeldq is not None:
        product.pixeldq = np.asarray(product.pixeldq, dtype=np.uint32)
    if product.groupdq is not None:
        product.groupdq = np.asarray(product.groupdq, dtype=np.uint8)


class ResetParameters(StepParameters):
    """Parameters of reset (none beyond the common ones)."""


class ResetStep(Step):
    """MIRI: subtract the reset-anomaly reference."""

    alias = "reset"
    class_name = "ResetStep"
    Parameters = ResetParameters
    reference_types = ("reset",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_RESET"
    chunking = None  # the RESET reference is indexed by the integration number

    def process(self, product):
        _native_ramp(product)
        ref = self.reference("reset")
        subtract_reset(product.data, product.pixeldq, ref.array("SCI", product), ref.dq(product))
        return product
