"""SaturationStep: plugin over :func:`steps.saturation.saturated_groups.flag_saturation`."""
from pydantic import Field

from runner import Step, StepParameters

from .saturated_groups import flag_saturation



class SaturationParameters(StepParameters):
    """Parameters of saturation."""

    n_pix_grow_sat: int = Field(1, ge=0, description="Grow SATURATED to this many neighbouring "
                                                     "pixels in each direction (1 = 3x3).")
    use_readpatt: bool = Field(True, description="Account for frame-averaged groups (threshold "
                                                 "dilution and the group-2 check).")


class SaturationStep(Step):
    """Flag saturated and A/D-floor groups."""

    alias = "saturation"
    class_name = "SaturationStep"
    Parameters = SaturationParameters
    reference_types = ("saturation", "superbias")
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_SATURA"
    chunking = "integrations"  # per integration; n_pix_grow_sat grows flags within a frame (whole frames)

    def process(self, product):
        product.conform()
        ref = self.reference("saturation")
        thresh = ref.array("SCI", product)
        sat_dq = ref.dq(product)
        bias = None
        if self.params.use_readpatt:
            bref = self.reference("superbias", required=False)
            if bref is not None:
                bias = bref.array("SCI", product)
        flag_saturation(product.data, product.groupdq, product.pixeldq, thresh, sat_dq=sat_dq,
                        bias=bias, n_pix_grow_sat=self.params.n_pix_grow_sat,
                        nframes=int(product.get("NFRAMES", 1) or 1),
                        groupgap=int(product.get("GROUPGAP", 0) or 0),
                        use_readpatt=self.params.use_readpatt)
        return product
