"""ResampleStep: drizzle calibrated images onto one TAN grid (jwst ``resample``, S_RESAMP).

Input
-----
- stage 3 (calwebb_image3): a :class:`runner.product_set.ProductSet`; the science members
  (``_cal`` / ``_crf`` ImageModel files with a gwcs) are streamed one at a time, so memory is
  the output mosaic plus one exposure. Returns the ``i2d`` image Product (the runner saves it
  as ``<association product>_i2d.fits``).
- stage 2 (calwebb_image2): a single image Product. Its ``i2d`` is *emitted*
  (``<rootname>_i2d.fits``) and the calibrated product is returned unchanged, so the
  pipeline's main output stays the ``_cal`` file, as in jwst.

Output i2d: SCI, ERR, WHT, CON (int32, (nplanes, ny, nx)), VAR_POISSON, VAR_RNOISE, VAR_FLAT;
``product.wcs`` a gwcs ``detector -> world`` TAN; FITS TAN cards in the SCI header; keywords
NDRIZ, RESWHT, PIXFRAC, PXSCLRT, KERNEL, FILLVAL, PIXAR_SR / PIXAR_A2 of the output pixel,
XPOSURE / EFFEXPTM / TEXPTIME (sum over inputs), EXPSTART (min), EXPEND (max).
"""
from __future__ import annotations

from typing import List, Literal, Optional

import numpy as np
from astropy.io import fits
from pydantic import Field

from runner import Product, SkipStep, Step, StepParameters
from runner.errors import InputError

from .drizzle_images import (ImageDrizzler, VARIANCES, build_driz_weight, intensity_scale,
                             parse_fillval)
from .output_grid import OutputGrid, make_output_wcs, mean_pixel_area

KERNELS = ("square", "point", "turbo", "gaussian", "lanczos2", "lanczos3")


class ResampleParameters(StepParameters):
    """Parameters of resample (jwst ResampleStep names and defaults)."""

    pixfrac: float = Field(1.0, gt=0.0, le=1.0, description="Drop size as a fraction of the input pixel.")
    kernel: str = Field("square", description="Drizzle kernel: square, point, turbo, gaussian, lanczos2, lanczos3.")
    fillval: str = Field("NaN", description="Value of output pixels with no input ('NaN'/'INDEF' or a number).")
    weight_type: Optional[Literal["ivm", "exptime"]] = Field(
        "ivm", description="Input weights: inverse read-noise variance ('ivm') or exposure time; None: DQ mask only.")
    output_shape: Optional[List[int]] = Field(None, min_length=2, max_length=2,
                                              description="Output shape (nx, ny); default covers all inputs.")
    crpix: Optional[List[float]] = Field(None, min_length=2, max_length=2,
                                         description="0-based (x, y) of the output reference pixel.")
    crval: Optional[List[float]] = Field(None, min_length=2, max_length=2,
                                         description="RA, Dec (deg) of the output reference pixel.")
    rotation: Optional[float] = Field(None, description="Position angle of the output y axis (deg east of north); None keeps the detector orientation.")
    pixel_scale_ratio: float = Field(1.0, gt=0, description="Output / input pixel scale.")
    pixel_scale: Optional[float] = Field(None, gt=0, description="Output pixel scale, arcsec (overrides pixel_scale_ratio).")
    output_wcs: str = Field("", description="ASDF file holding a 'wcs' (and optionally 'array_shape') to use as the output frame.")
    single: bool = Field(False, description="Resample each exposure separately (outlier-detection mode); not supported here.")
    blendheaders: bool = Field(True, description="Blend input metadata (here: exposure times and start/end only).")
    good_bits: str = Field("~DO_NOT_USE+NON_SCIENCE", description="DQ bits that do not exclude a pixel (jwst bit-flag syntax).")
    in_memory: bool = Field(True, description="Kept for jwst compatibility; inputs are always streamed one at a time.")
    enable_ctx: bool = Field(True, description="Compute the context (CON) image.")
    enable_err: bool = Field(True, description="Drizzle the variance arrays and compute ERR.")


# -- reading inputs (shared with outlier_detection) --------------------------------------------
def product_wcs(product):
    """The product's WCS: its gwcs, else an astropy WCS from the SCI header's FITS cards."""
    if product.wcs is not None:
        return product.wcs
    hdr = product.ext_headers.get("SCI")
    if hdr is not None and "CTYPE1" in hdr:
        from astropy.wcs import WCS

        return WCS(hdr)
    raise InputError(f"{product.filename}: no WCS (run assign_wcs first)")


def member_geometry(path):
    """(wcs, (ny, nx), header getter) of a member file, reading only headers and the WCS.

    The SCI array is not read (FITS memory map), so the footprint pass costs little memory.
    """
    from runner.product import read_wcs

    with fits.open(path, memmap=True) as hdul:
        names = [h.name.upper() for h in hdul]
        if "SCI" not in names:
            raise InputError(f"{path}: no SCI image extension")
        sci_hdr = hdul["SCI"].header.copy()
        primary = hdul[0].header.copy()
        shape = (int(sci_hdr["NAXIS2"]), int(sci_hdr["NAXIS1"]))
        wcs = read_wcs(hdul, path)
        if wcs is None and "CTYPE1" in sci_hdr:      # a FITS WCS only (not from assign_wcs)
            from astropy.wcs import WCS

            wcs = WCS(sci_hdr)
        if wcs is None:
            raise InputError(f"{path}: no WCS (run assign_wcs first)")
    def get(key, default=None):
        if key in primary:
            return primary[key]
        return sci_hdr.get(key, default)
    return wcs, shape, get


def exposure_time(get):
    """Effective exposure time (s) from EFFEXPTM / XPOSURE / EXPTIME, else 1."""
    for key in ("EFFEXPTM", "XPOSURE", "EXPTIME"):
        value = get(key)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return 1.0


def background_to_remove(get):
    """Sky level (data units) still in the data: BKGLEVEL when BKGSUB is false (skymatch)."""
    level = get("BKGLEVEL")
    subtracted = get("BKGSUB")
    if level is None or subtracted in (True, "T", "True", 1):
        return 0.0
    try:
        level = float(level)
    except (TypeError, ValueError):
        return 0.0
    return level if np.isfinite(level) else 0.0


def drizzle_inputs(product, wcs, weight_type, good_bits):
    """(data, weight, variances, iscale, exptime) of one image Product, ready to drizzle."""
    get = product.get
    data = np.asarray(product.data, dtype=np.float32)
    bkg = background_to_remove(get)
    if bkg:
        data = data - np.float32(bkg)
    exptime = exposure_time(get)
    weight = build_driz_weight(data, product.dq, product.var_rnoise, weight_type=weight_type,
                               good_bits=good_bits, exptime=exptime)
    variances = {name: product.arrays.get(name) for name in VARIANCES}
    pixar = get("PIXAR_SR")
    iscale = intensity_scale(pixar, mean_pixel_area(wcs, data.shape)) if pixar else 1.0
    return data, weight, variances, iscale, exptime


def load_output_wcs(path):
    """(wcs, (ny, nx) or None) from an ASDF file with 'wcs' (as jwst's output_wcs)."""
    import asdf

    with asdf.open(path, lazy_load=False, memmap=False) as af:
        wcs = af.tree["wcs"]
        shape = af.tree.get("array_shape") or getattr(wcs, "array_shape", None)
    return wcs, (tuple(int(v) for v in shape) if shape is not None else None)


class UserGrid(OutputGrid):
    """An output frame given by the user (any gwcs) instead of a computed TAN grid."""

    def __init__(self, wcs, shape):  # noqa: D401 - deliberately not calling OutputGrid.__init__
        self.wcs = wcs
        self.shape = (int(shape[0]), int(shape[1]))
        from .output_grid import local_cd_matrix

        cd = local_cd_matrix(wcs, (self.shape[1] - 1) / 2, (self.shape[0] - 1) / 2)
        self.cd = cd
        self.crpix = ((self.shape[1] - 1) / 2, (self.shape[0] - 1) / 2)
        from .output_grid import pixel_to_world

        ra, dec = pixel_to_world(wcs, [self.crpix[0]], [self.crpix[1]])
        self.crval = (float(ra[0]), float(dec[0]))

    def world_to_pixel(self, ra, dec):
        from .output_grid import world_to_pixel

        return world_to_pixel(self.wcs, ra, dec)


def build_grid(params, geometries):
    """The output grid from the step parameters and the inputs' (wcs, shape)."""
    if params.output_wcs:
        wcs, shape = load_output_wcs(params.output_wcs)
        if params.output_shape is not None:
            shape = (params.output_shape[1], params.output_shape[0])
        if shape is None:
            raise InputError(f"{params.output_wcs}: output_wcs has no array_shape; give output_shape")
        return UserGrid(wcs, shape)
    return make_output_wcs(geometries, pixel_scale_ratio=params.pixel_scale_ratio,
                           pixel_scale=params.pixel_scale, rotation=params.rotation,
                           crpix=params.crpix, crval=params.crval,
                           output_shape=params.output_shape)


# -- the step --------------------------------------------------------------------------------
class ResampleStep(Step):
    """Drizzle calibrated images onto one tangent-plane grid (i2d)."""

    alias = "resample"
    class_name = "ResampleStep"
    Parameters = ResampleParameters
    reference_types = ()
    input_kind = "any"
    output_kind = "image"
    status_keyword = "S_RESAMP"

    def process(self, product):
        p = self.params
        if p.kernel not in KERNELS:
            raise InputError(f"resample: kernel {p.kernel!r}; expected one of {', '.join(KERNELS)}")
        if p.single:
            raise InputError("resample: single=True is only used inside outlier_detection here")
        parse_fillval(p.fillval)
        if isinstance(product, Product):
            if product.kind != "image":
                raise SkipStep(f"resample takes 2-D images; this is a {product.kind} product")
            if _is_tso(product.get):
                raise SkipStep("time-series exposures are not resampled")
            i2d = self.resample([product], rootname=product.rootname, template=product)
            self.emit(i2d, "i2d")
            return product
        # a ProductSet: stream the science members
        indices = product.indices("science")
        if not indices:
            raise InputError(f"{product.name}: no science members to resample")
        geometries, optics = [], {}
        for i in indices:
            wcs, shape, get = member_geometry(product.members[i].path)
            geometries.append((wcs, shape))
            optics[product.members[i].path.name] = "/".join(
                str(get(k, "-")).strip() for k in ("INSTRUME", "FILTER", "PUPIL"))
        if len(set(optics.values())) > 1:
            listed = ", ".join(f"{name} {combo}" for name, combo in optics.items())
            raise InputError(f"{product.name}: members mix instruments or filters ({listed}); "
                             f"an image3 association combines one instrument/filter/pupil")

        template = product.open(indices[0])
        template.arrays.clear()          # only its headers are needed
        i2d = self.resample(product.iter_products("science"), rootname=product.name,
                            template=template, geometries=geometries, count=len(indices))
        return i2d

    def resample(self, products, *, rootname, template, geometries=None, count=None):
        """Drizzle an iterable of image Products; returns the i2d Product."""
        p = self.params
        if geometries is None:
            products = list(products)
            geometries = [(product_wcs(q), q.data.shape) for q in products]
            count = len(products)
        grid = build_grid(p, geometries)
        self.log.info("resample: output grid %s, scale %.4f arcsec, %d inputs", grid.shape,
                      grid.pixel_scale_deg * 3600, count)
        driz = ImageDrizzler(grid, pixfrac=p.pixfrac, kernel=p.kernel, fillval=p.fillval,
                             with_variance=p.enable_err, with_context=p.enable_ctx,
                             max_ctx_id=max(0, (count or 1) - 1))
        starts, ends, units = [], [], None
        for q in products:
            wcs = product_wcs(q)
            data, weight, variances, iscale, exptime = drizzle_inputs(q, wcs, p.weight_type, p.good_bits)
            driz.add(data, wcs, weight, variances=variances, iscale=iscale, exptime=exptime)
            for key, bucket in (("EXPSTART", starts), ("EXPEND", ends)):
                if q.get(key) is not None:
                    bucket.append(float(q.get(key)))
            sci_hdr = q.ext_headers.get("SCI")
            if units is None and sci_hdr is not None:
                units = sci_hdr.get("BUNIT")
            del data, weight, variances, q
        return self._make_product(driz, grid, template, rootname, starts, ends, units)

    def _make_product(self, driz, grid, template, rootname, starts, ends, units):
        p = self.params
        arrays = driz.arrays()
        meta = template.meta.copy()
        for key in ("S_REGION",):
            meta.remove(key, ignore_missing=True)
        area_sr = grid.pixel_area_sr
        meta["NDRIZ"] = (driz.ninputs, "Number of inputs drizzled")
        meta["RESWHT"] = (str(p.weight_type), "Type of drizzle weighting")
        meta["PIXFRAC"] = (p.pixfrac, "Drizzle pixel fraction")
        meta["KERNEL"] = (p.kernel, "Drizzle kernel")
        meta["FILLVAL"] = (str(p.fillval), "Value of output pixels without input")
        ratio = p.pixel_scale_ratio
        if p.pixel_scale is not None:           # the ratio the chosen scale gives, as jwst records it
            in_area = template.get("PIXAR_SR")
            ratio = float(np.sqrt(area_sr / float(in_area))) if in_area else 0.0
        meta["PXSCLRT"] = (ratio, "Output / input pixel scale ratio")
        meta["PIXAR_SR"] = (area_sr, "Output pixel area (sr)")
        meta["PIXAR_A2"] = (area_sr * (180 / np.pi * 3600) ** 2, "Output pixel area (arcsec^2)")
        total = driz.total_exptime
        for key in ("XPOSURE", "EFFEXPTM", "TEXPTIME"):
            meta[key] = (total, "Total exposure time of the drizzled inputs (s)")
        if starts:
            meta["EXPSTART"] = min(starts)
        if ends:
            meta["EXPEND"] = max(ends)
        sci_hdr = fits.Header()
        old = template.ext_headers.get("SCI")
        if old is not None:
            for card in old.cards:
                k = card.keyword
                if k.startswith(("CTYPE", "CRPIX", "CRVAL", "CD1_", "CD2_", "PC1_", "PC2_", "CDELT",
                                 "CUNIT", "A_", "B_", "AP_", "BP_", "WCSAXES", "RADESYS", "LONPOLE",
                                 "LATPOLE", "S_REGION")):
                    continue
                sci_hdr.append(card)
        sci_hdr.update(grid.header())
        sci_hdr["BUNIT"] = units or sci_hdr.get("BUNIT", "MJy/sr")
        sci_hdr["PIXAR_SR"] = meta["PIXAR_SR"]
        sci_hdr["PIXAR_A2"] = meta["PIXAR_A2"]
        ext_headers = {"SCI": sci_hdr}
        for name in ("ERR",) + VARIANCES:
            if name in arrays:
                h = fits.Header()
                h["BUNIT"] = sci_hdr["BUNIT"] if name == "ERR" else f"({sci_hdr['BUNIT']})**2"
                ext_headers[name] = h
        out = Product("image", meta, arrays, tables={}, ext_headers=ext_headers,
                      filename=f"{rootname}_i2d.fits", wcs=grid.wcs)
        return out


def _is_tso(get):
    value = get("TSOVISIT")
    return value in (True, "T", "True", "TRUE", 1)
