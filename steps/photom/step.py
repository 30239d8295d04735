"""PhotomStep: plugin over :mod:`steps.photom.photometric` (imaging)."""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from runner import SkipStep, Step, StepParameters
from runner.errors import InputError, ReferenceFileError

from steps.assign_wcs.step import IMAGING_EXP_TYPES

from .photometric import MJSR_TO_UJA2, apply_photom, describe_rows, find_photom_row


class PhotomParameters(StepParameters):
    """Parameters of photom (none beyond the common ones)."""


class PhotomStep(Step):
    """Convert count rates to MJy/sr with the PHOTOM reference; copy the AREA map."""

    alias = "photom"
    class_name = "PhotomStep"
    Parameters = PhotomParameters
    reference_types = ("photom", "area")
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_PHOTOM"
    chunking = "integrations"  # one factor and the AREA map per frame

    def process(self, product):
        if product.kind not in ("image", "cube"):
            raise InputError(f"{product.filename}: photom takes an image or cube product, "
                             f"this is a {product.kind} product")
        exp_type = str(product.get("EXP_TYPE", "")).strip().upper()
        if exp_type not in IMAGING_EXP_TYPES:
            raise SkipStep(f"EXP_TYPE {exp_type or '(missing)'} is not an imaging mode; spectroscopic "
                           f"photometric calibration is not implemented yet")
        ref = self.reference("photom")
        table = ref.tables.get("PHOTOM")
        if table is None or len(table) == 0:
            raise ReferenceFileError(f"{ref.path}: no PHOTOM table (or it is empty)")
        filt, pupil, sub = product.get("FILTER"), product.get("PUPIL"), product.get("SUBARRAY")
        found = find_photom_row(table, filt, pupil, sub)
        if found is None:
            raise ReferenceFileError(
                f"{ref.path}: no PHOTOM row for FILTER={filt} PUPIL={pupil} SUBARRAY={sub}; "
                f"rows: {describe_rows(table)}")
        photmjsr, _uncertainty = found
        if not np.isfinite(photmjsr) or photmjsr <= 0:
            raise ReferenceFileError(f"{ref.path}: PHOTMJSR = {photmjsr} for FILTER={filt} PUPIL={pupil}")
        apply_photom(product.arrays, photmjsr)

        area = self.reference("area", required=False)
        pixar_sr = ref.get("PIXAR_SR")
        pixar_a2 = ref.get("PIXAR_A2")
        if area is not None:
            amap = np.asarray(area.array("SCI", product), np.float32)
            if amap.ndim != 2:
                raise ReferenceFileError(f"{area.path}: AREA SCI has shape {tuple(amap.shape)}; expected 2-D")
            product.arrays["AREA"] = amap.copy()
            pixar_sr = pixar_sr if pixar_sr is not None else area.get("PIXAR_SR")
            pixar_a2 = pixar_a2 if pixar_a2 is not None else area.get("PIXAR_A2")

        cards = [("PHOTMJSR", float(photmjsr), "[MJy/sr / (DN/s)] flux conversion factor"),
                 ("PHOTUJA2", float(photmjsr * MJSR_TO_UJA2), "[uJy/arcsec^2 / (DN/s)] flux conversion")]
        if pixar_sr is not None:
            cards.append(("PIXAR_SR", float(pixar_sr), "[sr] nominal pixel area"))
        if pixar_a2 is not None:
            cards.append(("PIXAR_A2", float(pixar_a2), "[arcsec^2] nominal pixel area"))
        # primary header (our contract, Product.get) and SCI header (where stdatamodels reads them)
        sci = product.ext_headers.get("SCI")
        sci = fits.Header() if sci is None else sci.copy()
        for key, value, comment in cards:
            product.meta[key] = (value, comment)
            sci[key] = (value, comment)
        product.ext_headers["SCI"] = sci
        for ext in ("SCI", "ERR"):
            hdr = product.ext_headers.get(ext)
            hdr = fits.Header() if hdr is None else hdr.copy()
            hdr["BUNIT"] = ("MJy/sr", "physical units of the array values")
            product.ext_headers[ext] = hdr
        for ext in ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            if ext in product.arrays:
                hdr = product.ext_headers.get(ext)
                hdr = fits.Header() if hdr is None else hdr.copy()
                hdr["BUNIT"] = ("(MJy/sr)^2", "physical units of the array values")
                product.ext_headers[ext] = hdr
        self.log.info("PHOTMJSR = %.6g MJy/sr per DN/s (%s)", photmjsr, ref.name)
        return product
