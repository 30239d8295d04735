"""LastFrameStep: plugin over :func:`steps.lastframe.last_group.flag_last_group`."""
from runner import SkipStep, Step, StepParameters

from .last_group import flag_last_group



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
        product.conform()
        if not flag_last_group(product.groupdq):
            raise SkipStep("ngroups <= 2")
        return product
