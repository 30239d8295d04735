"""LastFrameStep: plugin over :func:`steps.lastframe.last_group.flag_last_group`."""
import numpy as np
from runner import SkipStep, Step, StepParameters

from .last_group import flag_last_group


def _native_ramp(product):
    """Make SCI/PIXELDQ/GROUPDQ native-byte-order arrays (FITS gives big-endian; numba needs native)."""
    product.data = np.asarray(product.data, dtype=np.float32)
    if product.pixeldq is not None:
        product.pixeldq = np.asarray(product.pixeldq, dtype=np.uint32)
    if product.groupdq is not None:
        product.groupdq = np.asarray(product.groupdq, dtype=np.uint8)


class LastFrameParameters(StepParameters):
    """Parameters of lastframe (none beyond the common ones)."""


class LastFrameStep(Step):
    """MIRI: flag the last group of each integration DO_NOT_USE (ngroups > 2)."""

    alias = "lastframe"
    class_name = "LastFrameStep"
    Parameters = LastFrameParameters
    reference_types = ()
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_LASTFR"
    chunking = "integrations"  # flags the last group of each integration

    def process(self, product):
        _native_ramp(product)
        if not flag_last_group(product.groupdq):
            raise SkipStep("ngroups <= 2")
        return product
