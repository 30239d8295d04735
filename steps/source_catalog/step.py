"""SourceCatalogStep: plugin over :func:`steps.source_catalog.catalog.make_source_catalog`.

Takes the i2d image product, emits the catalog as ``_cat.ecsv`` (fluxes in Jy) and the
segmentation image as ``_segm.fits``, and returns the image unchanged. Without an APCORR
reference the apertures follow a Gaussian PSF measured on the image (see
:mod:`steps.source_catalog.catalog`).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from runner import Product, Step, StepParameters
from runner.errors import InputError

from .catalog import make_source_catalog


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
    reference_types = ()
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
        cat, segm, info = make_source_catalog(
            data, product.err, mask=mask, wcs=product.wcs, pixar_sr=float(pixar),
            bkg_boxsize=p.bkg_boxsize, kernel_fwhm=p.kernel_fwhm, snr_threshold=p.snr_threshold,
            npixels=p.npixels, deblend=p.deblend,
            aperture_ee=(p.aperture_ee1, p.aperture_ee2, p.aperture_ee3),
            ci1_star_threshold=p.ci1_star_threshold, ci2_star_threshold=p.ci2_star_threshold)
        self.log.info("%s: %d sources; PSF FWHM %.3f pixels", product.filename, len(cat),
                      info.get("psf_fwhm", float("nan")))
        self.emit(SourceCatalog(cat, product.rootname), "cat")
        sci = product.ext_headers.get("SCI")
        segm_prod = Product("segm", product.meta.copy(), {"SCI": segm},
                            ext_headers={"SCI": sci.copy()} if sci is not None else {},
                            filename=product.filename, wcs=product.wcs)
        self.emit(segm_prod, "segm")
        product.meta["S_SRCCAT"] = "COMPLETE"
        return product
