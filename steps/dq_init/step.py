"""DQInitStep: plugin over :func:`steps.dq_init.mask_dq.apply_mask`."""
import numpy as np
from pydantic import Field

from runner import Step, StepParameters

from .mask_dq import apply_mask



class DQInitParameters(StepParameters):
    """Parameters of dq_init."""

    flag_groups: bool = Field(False, description="Also set DO_NOT_USE in every group of DO_NOT_USE "
                                                 "pixels (jwst: pixel DQ only).")


class DQInitStep(Step):
    """Combine the MASK reference DQ with the pixel DQ."""

    alias = "dq_init"
    class_name = "DQInitStep"
    Parameters = DQInitParameters
    reference_types = ("mask",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_DQINIT"
    chunking = "integrations"  # reference DQ merged into every frame alike

    def process(self, product):
        product.conform()
        ref = self.reference("mask")
        mask = ref.dq(product)
        if mask is None:
            mask = np.zeros(product.data.shape[-2:], np.uint32)
        if product.pixeldq is None:
            product.pixeldq = np.zeros(product.data.shape[-2:], np.uint32)
        if product.groupdq is None:
            product.groupdq = np.zeros(product.data.shape, np.uint8)
        apply_mask(product.pixeldq, mask, product.groupdq, flag_groups=self.params.flag_groups)
        return product
