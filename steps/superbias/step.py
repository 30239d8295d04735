"""SuperBiasStep: plugin over :func:`steps.superbias.bias_subtraction.subtract_bias`."""
from runner import Step, StepParameters

from .bias_subtraction import subtract_bias



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
        product.conform()
        ref = self.reference("superbias")
        subtract_bias(product.data, product.pixeldq, ref.array("SCI", product), ref.dq(product))
        return product
