"""LinearityStep: plugin over :func:`steps.linearity.polynomial.apply_linearity`."""
from runner import Step, StepParameters

from .polynomial import apply_linearity



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
        product.conform()
        ref = self.reference("linearity")
        apply_linearity(product.data, product.groupdq, product.pixeldq,
                        ref.array("COEFFS", product), ref.dq(product))
        return product
