"""AssignWcsStep: plugin over :mod:`steps.assign_wcs.imaging` (imaging exposures only)."""
from __future__ import annotations

from typing import Optional

from astropy.io import fits
from pydantic import Field

from runner import SkipStep, Step, StepParameters
from runner.errors import InputError

from .distortion import read_distortion, read_filter_offset, subarray_shift
from .imaging import fits_sip_header, imaging_wcs, strip_wcs_keywords
from .pointing import POINTING_KEYWORDS, Pointing, v23tosky

#: EXP_TYPEs whose WCS is detector -> v2v3 -> world (no spectral axis)
IMAGING_EXP_TYPES = frozenset({
    "NRC_IMAGE", "NRC_TSIMAGE", "NRC_CORON", "NRC_TACQ", "NRC_TACONFIRM", "NRC_FOCUS",
    "MIR_IMAGE", "MIR_TACQ", "MIR_TACONFIRM", "MIR_4QPM", "MIR_LYOT", "MIR_CORONCAL",
    "NIS_IMAGE", "NIS_AMI", "NIS_TACQ", "NIS_TACONFIRM", "NIS_FOCUS",
    "FGS_IMAGE", "FGS_FOCUS", "NRS_IMAGE",
})


class AssignWcsParameters(StepParameters):
    """Parameters of assign_wcs (jwst names)."""

    sip_approx: bool = Field(True, description="Add a FITS TAN-SIP approximation of the WCS to the SCI header.")
    sip_max_pix_error: float = Field(0.01, gt=0, description="Largest forward SIP fit error allowed, pixels.")
    sip_degree: Optional[int] = Field(None, ge=1, le=6, description="SIP polynomial degree (None: lowest of 1..6 meeting sip_max_pix_error).")
    sip_max_inv_pix_error: float = Field(0.01, gt=0, description="Largest inverse SIP fit error allowed, pixels.")
    sip_inv_degree: Optional[int] = Field(None, ge=1, le=6, description="Inverse SIP polynomial degree (None: lowest of 1..6 meeting sip_max_inv_pix_error).")
    sip_npoints: int = Field(12, ge=4, le=128, description="Grid points per axis for the SIP fit.")


class AssignWcsStep(Step):
    """Attach the detector -> v2v3 -> world gwcs (and a FITS SIP approximation) to an image."""

    alias = "assign_wcs"
    class_name = "AssignWcsStep"
    Parameters = AssignWcsParameters
    reference_types = ("distortion", "filteroffset")
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_WCS"
    chunking = "integrations"  # the WCS depends only on the header and the frame shape

    def process(self, product):
        if product.kind not in ("image", "cube"):
            raise InputError(f"{product.filename}: assign_wcs takes a rate (image) or rateints (cube) "
                             f"product, this is a {product.kind} product")
        exp_type = str(product.get("EXP_TYPE", "")).strip().upper()
        if exp_type not in IMAGING_EXP_TYPES:
            raise SkipStep(f"EXP_TYPE {exp_type or '(missing)'} is not an imaging mode; spectroscopic "
                           f"WCS (specwcs, wavelength) is not implemented yet")
        path = self.reference_path("distortion")
        if path is None:
            raise SkipStep("no DISTORTION reference applies to this exposure (N/A)")
        distortion, _meta = read_distortion(path, detector=product.get("DETECTOR"))
        offset_path = self.reference_path("filteroffset")
        if offset_path:
            offset = read_filter_offset(offset_path, product.get("FILTER"), product.get("PUPIL"))
            if offset is not None:
                from astropy.modeling.models import Shift

                distortion = (Shift(offset[0]) & Shift(offset[1])) | distortion
                self.log.info("filter offset (%g, %g) pixels from %s", offset[0], offset[1], offset_path)
        pointing = Pointing.from_values(self.require(product, *POINTING_KEYWORDS))
        shape = product.data.shape[-2:]
        wcs = imaging_wcs(distortion, v23tosky(pointing), shape,
                          subarray=subarray_shift(product.get("SUBSTRT1", 1), product.get("SUBSTRT2", 1)))
        product.wcs = wcs
        if self.params.sip_approx:
            sip = fits_sip_header(wcs, max_pix_error=self.params.sip_max_pix_error,
                                  degree=self.params.sip_degree,
                                  max_inv_pix_error=self.params.sip_max_inv_pix_error,
                                  inv_degree=self.params.sip_inv_degree,
                                  npoints=self.params.sip_npoints)
            sci = product.ext_headers.get("SCI")
            sci = fits.Header() if sci is None else sci.copy()
            strip_wcs_keywords(sci)
            sci.update(sip)
            product.ext_headers["SCI"] = sci
            self.log.info("SIP approximation: max error %.2g pixels (inverse %.2g)",
                          sip.get("SIPMXERR", float("nan")), sip.get("SIPIVERR", float("nan")))
        return product
