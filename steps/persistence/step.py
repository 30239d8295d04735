"""PersistenceStep: skip logic and flagging only, see :mod:`steps.persistence.persistence_flags`."""
from typing import Optional

from pydantic import Field

from runner import Product, SkipStep, Step, StepParameters

from .persistence_flags import (flag_persistence, persistence_skip_reason,
                                previously_saturated_from_groupdq)



class PersistenceParameters(StepParameters):
    """Parameters of persistence."""

    input_trapsfilled: Optional[str] = Field(
        None, description="Previous exposure: a ramp/jump product (pixels SATURATED in its last "
                          "group are flagged) or a 2-D persistence estimate in DN (SCI).")
    flag_pers_cutoff: Optional[float] = Field(40.0, description="Flag PERSISTENCE where the "
                                                                "persistence estimate exceeds this (DN).")


class PersistenceStep(Step):
    """Flag pixels expected to show persistence (no subtraction)."""

    alias = "persistence"
    class_name = "PersistenceStep"
    Parameters = PersistenceParameters
    reference_types = ("trapdensity", "trappars", "persat")
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_PERSIS"
    chunking = "integrations"  # pixel DQ from a previous exposure, frame by frame

    def process(self, product):
        product.conform()
        refs = [self.reference(r, required=False) for r in self.reference_types]
        reason = persistence_skip_reason(*refs, input_trapsfilled=self.params.input_trapsfilled)
        if reason:
            raise SkipStep(reason)
        if not self.params.input_trapsfilled:
            raise SkipStep("the trap-density persistence model is not implemented; flagging "
                           "needs input_trapsfilled")
        prev = Product.open(self.params.input_trapsfilled)
        if prev.groupdq is not None:
            n = flag_persistence(product.pixeldq,
                                 previously_saturated=previously_saturated_from_groupdq(prev.groupdq))
        elif prev.data is not None and prev.data.ndim == 2:
            n = flag_persistence(product.pixeldq, persistence=prev.data,
                                 flag_pers_cutoff=self.params.flag_pers_cutoff)
        else:
            raise SkipStep(f"{prev.filename}: input_trapsfilled has neither GROUPDQ nor a 2-D SCI")
        self.log.info("flagged %d pixels PERSISTENCE", n)
        return product
