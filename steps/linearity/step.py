"""LinearityStep: plugin over :func:`steps.linearity.polynomial.apply_linearity`."""
import numpy as np
from runner import Step, StepParameters

from .polynomial import apply_linearity


def _native_ramp(product):
    """Make SCI/PIXELDQ/GROUPDQ native-byte-order arrays (FITS gives big-endian; numba needs native)."""
    product.data = np.asarray(product.data, dtype=np.float32)
    if product.pixeldq is not None:
        product.pixeldq = np.asarray(product.pixeldq, dtype=np.uint32)
    if product.groupdq is not None:
        product.groupdq = np.asarray(product.groupdq, dtype=np.uint8)


class LinearityParameters(StepParameters):
    """Parameters of linearity (none beyond the common ones)."""


class LinearityStep(Step):
    """Per-pixel polynomial linearity correction."""

    alias = "linearity"
    class_name = "LinearityStep"
    Parameters = LinearityParameters
    reference_types = ("linearity",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_LINEAR"
    chunking = "integrations"  # per pixel and group

    def process(self, product):
        _native_ramp(product)
        ref = self.reference("linearity")
        apply_linearity(product.data, product.groupdq, product.pixeldq,
                        ref.array("COEFFS", product), ref.dq(product))
        return product
