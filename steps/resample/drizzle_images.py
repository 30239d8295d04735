"""Drizzle images onto a common grid and blot a grid back, over plain numpy arrays.

Wraps :class:`drizzle.resample.Drizzle` (Fruchter & Hook 2002) the way the reference pipeline
(jwst / stcal ``resample``) uses it:

- input weights from the DQ mask and the read-noise variance (``weight_type='ivm'``) or the
  exposure time (``'exptime'``);
- surface brightness (MJy/sr) rescaled by ``iscale = PIXAR_SR / mean pixel area`` so that
  flux is conserved when the WCS pixel area differs from the photometric one;
- variance arrays drizzled with squared weights (``data2``), ERR = sqrt of their sum;
- a context image (CON) with one bit per input.

Nothing here reads files or Products.
"""
from __future__ import annotations

import re

import numpy as np

from runner import dqflags

from .output_grid import pixel_to_world, world_to_pixel

__all__ = [
    "interpret_bit_flags", "build_mask", "build_driz_weight", "compute_pixmap", "intensity_scale",
    "ImageDrizzler", "blot", "parse_fillval",
]

VARIANCES = ("VAR_RNOISE", "VAR_POISSON", "VAR_FLAT")


def interpret_bit_flags(bit_flags):
    """Integer mask of the DQ bits that count as *good*, from jwst-style ``good_bits``.

    Parameters
    ----------
    bit_flags : int, str or None
        An integer; or names / integers joined by ``+`` or ``,`` (``"DO_NOT_USE+NON_SCIENCE"``),
        optionally preceded by ``~`` meaning "all bits except these" (``"~DO_NOT_USE"``).
        ``None`` means no bit is good (any set bit makes a pixel bad).

    Returns
    -------
    int
        Bits that are ignored when deciding whether a pixel is usable.
    """
    if bit_flags is None:
        return 0
    if isinstance(bit_flags, (int, np.integer)):
        return int(bit_flags)
    text = str(bit_flags).strip()
    if text == "" or text.upper() == "NONE":
        return 0
    invert = text.startswith("~")
    if invert:
        text = text[1:].strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
    value = 0
    for token in re.split(r"[+,|]", text):
        token = token.strip()
        if not token:
            continue
        if token.lstrip("-").isdigit():
            value |= int(token)
        else:
            key = token.upper()
            if key not in dqflags.pixel:
                raise ValueError(f"good_bits: unknown DQ flag name {token!r}")
            value |= int(dqflags.pixel[key])
    if invert:
        value = ~value & 0xFFFFFFFF
    return value


def build_mask(dq, good_bits):
    """True where a pixel is usable: no DQ bit set outside ``good_bits``."""
    good = np.uint32(interpret_bit_flags(good_bits))
    return (np.asarray(dq, dtype=np.uint32) & ~good) == 0


def build_driz_weight(data, dq=None, var_rnoise=None, weight_type="ivm", good_bits=None,
                      exptime=1.0):
    """Per-pixel drizzle weights (float32), zero on unusable or non-finite pixels.

    Parameters
    ----------
    data : numpy.ndarray
        Science array (any unit); non-finite pixels get weight 0.
    dq : numpy.ndarray, optional
        DQ array (uint32).
    var_rnoise : numpy.ndarray, optional
        Read-noise variance, (data unit)^2; ``weight_type='ivm'`` uses ``1/var_rnoise``
        (falls back to the DQ mask alone when absent, as jwst does).
    weight_type : {'ivm', 'exptime', None}
    good_bits : int or str
        See :func:`interpret_bit_flags`.
    exptime : float
        Exposure time, s (``weight_type='exptime'``).
    """
    mask = np.isfinite(data)
    if dq is not None:
        mask &= build_mask(dq, good_bits)
    if weight_type == "ivm" and var_rnoise is not None and var_rnoise.shape == data.shape:
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where((var_rnoise > 0) & np.isfinite(var_rnoise), 1.0 / var_rnoise, 0.0)
        weight = (inv * mask).astype(np.float32)
    elif weight_type == "exptime":
        weight = (float(exptime) * mask).astype(np.float32)
    else:
        weight = mask.astype(np.float32)
    return weight


def compute_pixmap(wcs_from, wcs_to, shape, rows_per_block=512):
    """Positions of every ``wcs_from`` pixel in the ``wcs_to`` frame.

    Parameters
    ----------
    wcs_from, wcs_to : gwcs.WCS or APE 14 WCS (``wcs_to`` may be an OutputGrid)
    shape : (ny, nx)
        Shape of the ``wcs_from`` image.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, 2)`` float64 with ``[..., 0] = x`` and ``[..., 1] = y`` (0-based) in the
        ``wcs_to`` frame, NaN where undefined.
    """
    ny, nx = shape[-2:]
    pixmap = np.empty((ny, nx, 2), dtype=np.float64)
    xs = np.arange(nx, dtype=np.float64)
    for r0 in range(0, ny, rows_per_block):
        r1 = min(ny, r0 + rows_per_block)
        x, y = np.meshgrid(xs, np.arange(r0, r1, dtype=np.float64))
        ra, dec = pixel_to_world(wcs_from, x, y)
        if hasattr(wcs_to, "world_to_pixel") and not hasattr(wcs_to, "forward_transform") \
                and hasattr(wcs_to, "crval"):
            u, v = wcs_to.world_to_pixel(ra, dec)
        else:
            u, v = world_to_pixel(wcs_to, ra, dec)
        pixmap[r0:r1, :, 0] = u
        pixmap[r0:r1, :, 1] = v
    return pixmap


def intensity_scale(pixar_sr, input_pixel_area_sr):
    """Factor applied to surface-brightness data before drizzling (jwst ``iscale**2``).

    ``PIXAR_SR / mean WCS pixel area``; 1 when PIXAR_SR is unknown.
    """
    if not pixar_sr or not input_pixel_area_sr or not np.isfinite(input_pixel_area_sr):
        return 1.0
    return float(pixar_sr) / float(input_pixel_area_sr)


def parse_fillval(fillval):
    """``'INDEF'``/``'NaN'``/None -> NaN; otherwise the float value."""
    if fillval is None:
        return np.nan
    text = str(fillval).strip().upper()
    if text in ("INDEF", "NAN", ""):
        return np.nan
    return float(fillval)


class ImageDrizzler:
    """Accumulate inputs on one output grid (the mosaic; memory = output arrays + one input).

    Parameters
    ----------
    grid : steps.resample.output_grid.OutputGrid
    pixfrac : float
        Drop size as a fraction of the input pixel (0-1].
    kernel : str
        'square', 'point', 'turbo', 'gaussian', 'lanczos2', 'lanczos3'.
    fillval : str or float
        Value of output pixels nothing landed on ('NaN' / 'INDEF' -> NaN).
    with_variance : bool
        Also drizzle VAR_RNOISE, VAR_POISSON, VAR_FLAT with squared weights.
    with_context : bool
        Keep the context image (CON).
    """

    def __init__(self, grid, pixfrac=1.0, kernel="square", fillval="NaN", with_variance=True,
                 with_context=True, max_ctx_id=None):
        from drizzle.resample import Drizzle

        self.grid = grid
        self.pixfrac = float(pixfrac)
        self.kernel = kernel
        self.fillval = parse_fillval(fillval)
        self.with_variance = with_variance
        ny, nx = grid.shape
        out_img2 = [np.zeros((ny, nx), np.float32) for _ in VARIANCES] if with_variance else None
        self._driz = Drizzle(kernel=kernel, fillval=self.fillval, fillval2=np.nan,
                             out_shape=(ny, nx), out_img2=out_img2, disable_ctx=not with_context,
                             max_ctx_id=max_ctx_id)
        self.ninputs = 0
        self.total_exptime = 0.0

    def add(self, data, wcs, weight, *, variances=None, iscale=1.0, exptime=1.0, pixmap=None):
        """Drizzle one image.

        Parameters
        ----------
        data : numpy.ndarray
            Science array (surface brightness, e.g. MJy/sr); NaN pixels should have weight 0.
        wcs : gwcs.WCS or APE 14 WCS
            The input's WCS.
        weight : numpy.ndarray
            Per-pixel weights (:func:`build_driz_weight`).
        variances : dict, optional
            ``VAR_*`` name -> variance array ((data unit)^2).
        iscale : float
            :func:`intensity_scale` factor (variances get ``iscale**2``).
        exptime : float
            Exposure time, s (bookkeeping only: data are rates).
        pixmap : numpy.ndarray, optional
            Precomputed :func:`compute_pixmap`.
        """
        shape = data.shape
        if pixmap is None:
            pixmap = compute_pixmap(wcs, self.grid, shape)
        good = np.isfinite(pixmap[..., 0]) & np.isfinite(pixmap[..., 1])
        weight = np.where(good, weight, 0.0).astype(np.float32)
        pixmap = np.where(good[..., None], pixmap, -1e6)   # cdrizzle rejects NaN in the map
        sci = np.where(weight > 0, data, 0.0).astype(np.float32)
        data2 = None
        if self.with_variance:
            data2 = []
            for name in VARIANCES:
                var = (variances or {}).get(name)
                if var is None or var.shape != shape:
                    data2.append(np.zeros(shape, np.float32))
                else:
                    data2.append(np.where(weight > 0, np.nan_to_num(var, nan=0.0, posinf=0.0), 0.0)
                                 .astype(np.float32))
        self._driz.add_image(sci, exptime=max(float(exptime), 1e-30), pixmap=pixmap, data2=data2,
                             iscale=float(iscale), weight_map=weight, pixfrac=self.pixfrac,
                             in_units="cps")
        self.ninputs += 1
        self.total_exptime += float(exptime)

    def arrays(self):
        """Output arrays: SCI, WHT, CON (int32, (nplanes, ny, nx)), VAR_*, ERR (float32)."""
        d = self._driz
        sci = np.asarray(d.out_img, dtype=np.float32)
        wht = np.asarray(d.out_wht, dtype=np.float32)
        out = {"SCI": sci, "WHT": wht}
        if d.out_ctx is not None:
            con = np.asarray(d.out_ctx, dtype=np.int32)
            out["CON"] = con if con.ndim == 3 else con[None]
        if self.with_variance:
            img2 = d.out_img2
            if isinstance(img2, np.ndarray) and img2.ndim == 2:
                img2 = [img2]
            total = np.zeros_like(sci)
            nodata = wht <= 0
            for name, arr in zip(VARIANCES, img2):
                arr = np.asarray(arr, dtype=np.float32)
                arr[nodata] = np.nan
                out[name] = arr
                total = total + np.nan_to_num(arr)
            err = np.sqrt(total).astype(np.float32)
            err[nodata] = np.nan
            out["ERR"] = err
        return out


def blot(median, median_grid, blot_wcs, blot_shape, iscale=1.0, fillval=np.nan, interp="linear"):
    """Interpolate a resampled (median) image back onto an input's pixels.

    Parameters
    ----------
    median : numpy.ndarray
        Image on ``median_grid``.
    median_grid : OutputGrid or WCS
    blot_wcs : gwcs.WCS or APE 14 WCS
        The input exposure's WCS.
    blot_shape : (ny, nx)
    iscale : float
        Multiplies the blotted values: ``1 / intensity_scale`` of that input, bringing true
        surface brightness back to the input's photometric convention.
    interp : str
        drizzle ``blot_image`` interpolation ('linear' as jwst outlier detection uses).

    Returns
    -------
    numpy.ndarray
        float32 ``blot_shape``; ``fillval`` where the input falls outside the median image.
    """
    from drizzle.resample import blot_image

    pixmap = compute_pixmap(blot_wcs, median_grid, blot_shape)
    bad = ~(np.isfinite(pixmap[..., 0]) & np.isfinite(pixmap[..., 1]))
    pixmap[bad] = -1.0
    med = np.asarray(median, dtype=np.float32)
    nanmask = ~np.isfinite(med)
    med_filled = np.where(nanmask, 0.0, med).astype(np.float32)
    out = blot_image(med_filled, pixmap, fillval=np.nan, iscale=float(iscale), interp=interp)
    if nanmask.any():
        # pixels whose interpolation stencil touches a NaN median pixel are undefined
        nanblot = blot_image(nanmask.astype(np.float32), pixmap, fillval=1.0, interp="linear")
        out[nanblot > 0] = np.nan
    ny, nx = median.shape
    outside = bad | (pixmap[..., 0] < -0.5) | (pixmap[..., 0] > nx - 0.5) | \
        (pixmap[..., 1] < -0.5) | (pixmap[..., 1] > ny - 0.5)
    out[outside] = fillval
    return np.asarray(out, dtype=np.float32)
