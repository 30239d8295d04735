"""ChargeMigrationStep: plugin over :func:`steps.charge_migration.chargeloss.flag_charge_migration`."""
from pydantic import Field

from runner import SkipStep, Step, StepParameters

from .chargeloss import flag_charge_migration



class ChargeMigrationParameters(StepParameters):
    """Parameters of charge_migration."""

    signal_threshold: float = Field(25000.0, gt=0, description="Signal (DN) above which groups are "
                                                               "flagged CHARGELOSS and DO_NOT_USE.")


class ChargeMigrationStep(Step):
    """Flag groups above the charge-migration threshold."""

    alias = "charge_migration"
    class_name = "ChargeMigrationStep"
    Parameters = ChargeMigrationParameters
    reference_types = ()
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_CHGMIG"
    chunking = "integrations"  # per pixel and integration

    def process(self, product):
        product.conform()
        if not flag_charge_migration(product.data, product.groupdq, self.params.signal_threshold):
            raise SkipStep("fewer than 3 groups")
        return product
