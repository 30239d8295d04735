"""EmiCorrStep: plugin over :func:`steps.emicorr.emi_waveform.subtract_emi`."""
from typing import List, Optional

from pydantic import Field

from runner import SkipStep, Step, StepParameters

from .emi_waveform import CLOCK_S, EMI_FREQUENCIES_HZ, subtract_emi



class EmiCorrParameters(StepParameters):
    """Parameters of emicorr."""

    nbins: Optional[int] = Field(None, ge=4, description="Phase bins per EMI period (default: one "
                                                         "per 10 us clock, 16..256).")
    onthefly_corr_freq: Optional[List[float]] = Field(
        None, description="EMI frequencies (Hz) to correct; default the nominal MIRI set "
                          "(390.625, 218.3, 164.9, 10.039 Hz).")


class EmiCorrStep(Step):
    """MIRI: remove electromagnetic-interference patterns by phase folding.

    As in jwst, the step runs only when an EMICORR reference applies or EMI frequencies are
    given (``onthefly_corr_freq``); when CRDS answers N/A and no frequency is given it is
    SKIPPED. (The phase-folded waveform is always measured from the data itself, at the
    nominal MIRI frequencies unless ``onthefly_corr_freq`` says otherwise.)
    """

    alias = "emicorr"
    class_name = "EmiCorrStep"
    Parameters = EmiCorrParameters
    reference_types = ("emicorr",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_MIREMI"
    chunking = None  # the EMI waveform is fitted over all integrations and its phase depends on the integration index

    def process(self, product):
        product.conform()
        if str(product.get("INSTRUME", "")).upper() != "MIRI":
            raise SkipStep("emicorr applies to MIRI only")
        if product.data.shape[1] < 3:
            raise SkipStep("fewer than 3 groups")
        if not self.params.onthefly_corr_freq and self.reference_path("emicorr") is None:
            raise SkipStep("no EMICORR reference applies (N/A) and no onthefly_corr_freq given "
                           "(jwst skips the step)")
        freqs = self.params.onthefly_corr_freq or list(EMI_FREQUENCIES_HZ.values())
        ny, nx = product.data.shape[-2:]
        timing = {"nresets_between_ints": int(product.get("NRESETS", 1) or 1)}
        tframe = product.get("TFRAME")
        if tframe:
            # frame time = ny rows x (nx/4 pixel clocks + row overhead) x 10 us
            frameclocks = int(round(float(tframe) / CLOCK_S))
            timing["frameclocks"] = frameclocks
            timing["extra_rowclocks"] = max(0, frameclocks // ny - nx // 4)
        amps = subtract_emi(product.data, freqs, groupdq=product.groupdq, nbins=self.params.nbins,
                            **timing)
        for f, a in amps.items():
            self.log.info("EMI %.3f Hz: waveform half-amplitude %.3f DN", f, a)
        return product
