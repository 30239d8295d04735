"""FirstFrameStep: plugin over :func:`steps.firstframe.first_group.flag_first_group`."""
from pydantic import Field

from runner import SkipStep, Step, StepParameters

from .first_group import flag_first_group



class FirstFrameParameters(StepParameters):
    """Parameters of firstframe."""

    bright_use_group1: bool = Field(False, description="Keep group 1 for pixels saturated by group 3.")


class FirstFrameStep(Step):
    """MIRI: flag the first group of each integration DO_NOT_USE (ngroups > 3)."""

    alias = "firstframe"
    class_name = "FirstFrameStep"
    Parameters = FirstFrameParameters
    reference_types = ()
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_FRSTFR"
    chunking = "integrations"  # flags group 1 of each integration

    def process(self, product):
        product.conform()
        if not flag_first_group(product.groupdq, bright_use_group1=self.params.bright_use_group1):
            raise SkipStep("ngroups <= 3")
        return product
