"""DarkCurrentStep: plugin over :func:`steps.dark_current.dark_subtraction.subtract_dark`."""
from typing import Optional

from pydantic import Field

from runner import Product, Step, StepParameters
from runner.errors import ReferenceFileError

from .dark_subtraction import subtract_dark



class DarkCurrentParameters(StepParameters):
    """Parameters of dark_current."""

    dark_output: Optional[str] = Field(None, description="Save the frame-averaged dark actually "
                                                         "subtracted to this FITS file.")


class DarkCurrentStep(Step):
    """Subtract the dark ramp, averaged to the science readout pattern."""

    alias = "dark_current"
    class_name = "DarkCurrentStep"
    Parameters = DarkCurrentParameters
    reference_types = ("dark",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_DARK"
    chunking = "integrations"  # per group; a MIRI 4-D dark is indexed by the integration (CHUNKI0)

    def process(self, product):
        product.conform()
        ref = self.reference("dark")
        dark = ref.array("SCI", product)
        first = int(product.meta.get("CHUNKI0", 0) or 0)    # integration chunk (runner.chunked)
        if dark.ndim == 4 and first:
            dark = dark[min(first, dark.shape[0] - 1):]      # integration i uses min(i, n - 1)
        try:
            _, avg = subtract_dark(
                product.data, product.pixeldq, dark, dark_dq=ref.dq(product),
                nframes=int(product.get("NFRAMES", 1) or 1),
                groupgap=int(product.get("GROUPGAP", 0) or 0),
                dark_nframes=int(ref.get("NFRAMES", 1) or 1),
                dark_groupgap=int(ref.get("GROUPGAP", 0) or 0),
                drop_frames1=int(product.get("DRPFRMS1", 0) or 0), return_dark=True)
        except ValueError as exc:
            raise ReferenceFileError(f"{ref.path}: {exc}") from None
        if self.params.dark_output:
            meta = product.meta.copy()
            Product("dark", meta, {"SCI": avg}, filename=self.params.dark_output).save(
                self.params.dark_output)
        return product
