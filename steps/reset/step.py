"""ResetStep: plugin over :func:`steps.reset.reset_subtraction.subtract_reset`."""
from runner import Step, StepParameters

from .reset_subtraction import subtract_reset



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
        product.conform()
        ref = self.reference("reset")
        subtract_reset(product.data, product.pixeldq, ref.array("SCI", product), ref.dq(product))
        return product
