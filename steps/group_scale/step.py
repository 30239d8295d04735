"""GroupScaleStep: plugin over :func:`steps.group_scale.scale_groups.scale_groups`."""
from runner import SkipStep, Step, StepParameters

from .scale_groups import scale_groups



class GroupScaleParameters(StepParameters):
    """Parameters of group_scale (none beyond the common ones)."""


class GroupScaleStep(Step):
    """Rescale groups averaged on board with FRMDIVSR != NFRAMES."""

    alias = "group_scale"
    class_name = "GroupScaleStep"
    Parameters = GroupScaleParameters
    reference_types = ()
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_GRPSCL"
    chunking = "integrations"  # each group of each integration is rescaled alone

    def process(self, product):
        product.conform()
        nframes = product.get("NFRAMES")
        frmdivsr = product.get("FRMDIVSR")
        if nframes is None or frmdivsr is None or int(frmdivsr) == int(nframes):
            raise SkipStep(f"FRMDIVSR ({frmdivsr}) equals NFRAMES ({nframes}) or is absent")
        _, factor = scale_groups(product.data, frmdivsr, nframes)
        self.log.info("scaled groups by FRMDIVSR/NFRAMES = %g", factor)
        return product
