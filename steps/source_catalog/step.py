"""SourceCatalogStep: plugin over :func:`steps.source_catalog.catalog.make_source_catalog`.

Takes the i2d image product, emits the catalog as ``_cat.ecsv`` (fluxes in Jy) and the
segmentation image as ``_segm.fits``, and returns the image unchanged.

References: ``apcorr`` (CRDS APCORR, jwst's format: an ``APCORR`` table of filter, pupil
[MIRI: subarray], eefraction, radius, apcorr, skyin, skyout). As in jwst, the rows of the
image's FILTER and PUPIL (MIRI: FILTER and SUBARRAY) whose encircled energy is
``aperture_ee1/2/3`` give the aperture radii and the correction of the largest aperture, and
skyin / skyout the local background annulus; radii are divided by the image's pixel scale
ratio (``PXSCLRT``; 1 with a warning when absent). By default (``apcorr_growth``) the
correction is refined on the image for the PSF broadening of resampling (see
:mod:`steps.source_catalog.catalog`). When CRDS says N/A (no APCORR for the mode) the
apertures follow a Gaussian PSF measured on the image and the correction is measured from the
image's curve of growth. The catalog's metadata (``apcorr_method``, ``apcorr_reference``) and
the ``R_APCORR`` keyword record which was used. An APCORR reference without rows for the
image's configuration or for an ``aperture_ee`` value stops the step with a message naming
the file (as jwst).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from runner import Product, Step, StepParameters
from runner.errors import InputError, ReferenceFileError

from .catalog import make_source_catalog
from .reference_data import aperture_parameters, select_apcorr_rows


class SourceCatalogParameters(StepParameters):
    """Parameters of source_catalog (jwst names and defaults)."""

    bkg_boxsize: int = Field(1000, ge=1, description="Background mesh box size (pixels).")
    kernel_fwhm: float = Field(2.0, gt=0, description="FWHM (pixels) of the Gaussian detection kernel.")
    snr_threshold: float = Field(3.0, gt=0, description="Per-pixel detection threshold (background RMS units).")
    npixels: int = Field(25, ge=1, description="Minimum connected pixels of a source.")
    deblend: bool = Field(False, description="Deblend overlapping sources (needs scikit-image).")
    aperture_ee1: int = Field(30, gt=0, lt=100, description="Encircled energy (%) of the smallest aperture.")
    aperture_ee2: int = Field(50, gt=0, lt=100, description="Encircled energy (%) of the middle aperture.")
    aperture_ee3: int = Field(70, gt=0, lt=100, description="Encircled energy (%) of the largest aperture.")
    ci1_star_threshold: float = Field(2.0, gt=0, description="CI_50_30 below which a source may be a star.")
    ci2_star_threshold: float = Field(1.8, gt=0, description="CI_70_50 below which a source may be a star.")
    apcorr_growth: bool = Field(True, description="With an APCORR reference: scale its correction by the flux ratio, measured on bright isolated sources, between a reference radius inside the sky annulus and the largest aperture (corrects the drizzle's broadening of undersampled PSFs); False: the reference's correction alone (jwst).")


class SourceCatalog:
    """A source catalog emitted as ``<root>_cat.ecsv``."""

    file_extension = ".ecsv"

    def __init__(self, table, rootname=None):
        self.table = table
        self.rootname = rootname

    def save(self, path):
        self.table.write(path, format="ascii.ecsv", overwrite=True)
        return path


class SourceCatalogStep(Step):
    """Detect sources in the combined image and write their photometry and positions."""

    alias = "source_catalog"
    class_name = "SourceCatalogStep"
    Parameters = SourceCatalogParameters
    reference_types = ("apcorr",)
    input_kind = "image"
    output_kind = "image"
    status_keyword = "S_SRCCAT"

    def process(self, product):
        p = self.params
        if not (p.aperture_ee1 < p.aperture_ee2 < p.aperture_ee3):
            raise InputError(f"aperture_ee1 < aperture_ee2 < aperture_ee3 required, got "
                             f"{p.aperture_ee1}, {p.aperture_ee2}, {p.aperture_ee3}")
        pixar = product.get("PIXAR_SR")
        if pixar is None and product.get("PIXAR_A2") is not None:
            pixar = float(product.get("PIXAR_A2")) / 206264.80624709636 ** 2
        if pixar is None:
            raise InputError(f"{product.filename}: missing keyword PIXAR_SR (and PIXAR_A2), which "
                             "step source_catalog needs to convert MJy/sr to Jy")
        unit = str(product.ext_headers.get("SCI", {}).get("BUNIT", "MJy/sr")).strip()
        if unit and unit.lower().replace(" ", "") not in ("mjy/sr", "mjy/steradian"):
            self.log.warning("%s: BUNIT is %r, not MJy/sr; fluxes assume MJy/sr", product.filename, unit)
        data = np.asarray(product.data, float)
        mask = ~np.isfinite(data)
        wht = product.arrays.get("WHT")
        if wht is not None:
            mask |= np.asarray(wht) <= 0
        if product.dq is not None:
            mask |= (np.asarray(product.dq) & 1) > 0
        aperture_ee = (p.aperture_ee1, p.aperture_ee2, p.aperture_ee3)
        aperture_params = self._aperture_parameters(product, aperture_ee)
        cat, segm, info = make_source_catalog(
            data, product.err, mask=mask, wcs=product.wcs, pixar_sr=float(pixar),
            bkg_boxsize=p.bkg_boxsize, kernel_fwhm=p.kernel_fwhm, snr_threshold=p.snr_threshold,
            npixels=p.npixels, deblend=p.deblend, aperture_ee=aperture_ee,
            ci1_star_threshold=p.ci1_star_threshold, ci2_star_threshold=p.ci2_star_threshold,
            aperture_params=aperture_params, apcorr_growth=p.apcorr_growth)
        self.log.info("%s: %d sources; PSF FWHM %.3f pixels; aperture correction %.4f (%s%s)",
                      product.filename, len(cat), info.get("psf_fwhm", float("nan")),
                      info.get("apcorr", float("nan")), info.get("apcorr_method", "none"),
                      f", {info['apcorr_reference']}" if info.get("apcorr_reference") else "")
        self.emit(SourceCatalog(cat, product.rootname), "cat")
        sci = product.ext_headers.get("SCI")
        segm_prod = Product("segm", product.meta.copy(), {"SCI": segm},
                            ext_headers={"SCI": sci.copy()} if sci is not None else {},
                            filename=product.filename, wcs=product.wcs)
        self.emit(segm_prod, "segm")
        product.meta["S_SRCCAT"] = "COMPLETE"
        return product

    def _aperture_parameters(self, product, aperture_ee):
        """Aperture radii, corrections and sky annulus from the APCORR reference, or None (N/A).

        Raises
        ------
        ReferenceFileError
            The reference has no APCORR table, no rows for the image's configuration, or no
            single row for an ``aperture_ee`` value.
        """
        ref = self.reference("apcorr", required=False)
        if ref is None:
            self.log.info("%s: no APCORR reference (N/A); apertures and aperture correction are "
                          "measured on the image", product.filename)
            return None
        table = ref.tables.get("APCORR")
        if table is None:
            raise ReferenceFileError(f"{ref.path}: no APCORR table extension in this APCORR reference")
        instrument = product.get("INSTRUME")
        try:
            rows = select_apcorr_rows(table, instrument, product.get("FILTER"), product.get("PUPIL"),
                                      product.get("SUBARRAY"))
        except ValueError as exc:
            raise ReferenceFileError(f"{ref.path}: {exc}") from None
        ratio = product.get("PXSCLRT")
        try:
            ratio = float(ratio)
        except (TypeError, ValueError):
            ratio = None
        if ratio is None or not np.isfinite(ratio) or ratio <= 0:
            self.log.warning("%s: pixel scale ratio (PXSCLRT) unknown; APCORR radii assume the "
                             "native detector pixel scale (pixel_scale_ratio = 1)", product.filename)
            ratio = 1.0
        try:
            params = aperture_parameters(rows, aperture_ee, ratio)
        except ValueError as exc:
            raise ReferenceFileError(f"{ref.path}: {exc}") from None
        params["source"] = ref.name
        return params
