"""Circular-aperture photometry of one source in every integration of a time series.

Plain numpy arrays in, arrays out (no files, no Product). The reference pipeline (jwst
``tso_photometry``) calls photutils ``ApertureStats`` once per integration; here the exact
pixel/circle overlap weights come from :func:`photutils.geometry.circular_overlap_grid` and the
sums are vectorised over integrations, on a small cutout around the source, so thousands of
integrations take well under a second and memory does not grow with the frame size.

Conventions
-----------
* Pixel coordinates are 0-based; pixel ``(y, x)`` covers ``x - 0.5 .. x + 0.5``.
* ``data`` is ``(nints, ny, nx)`` in any surface-brightness or count unit; ``var`` is its
  variance (unit squared). Sums are in ``unit * pixel``.
* Errors: a pixel with overlap weight ``w`` contributes ``w**2 * var`` to the variance of a
  weighted sum (photutils uses ``w * var``; the two agree for whole pixels).

Bad pixels (``bad`` True: DO_NOT_USE, non-finite data or variance)
-------------------------------------------------------------------
* Aperture: a pixel that is bad in *some* integrations is replaced, in those integrations, by
  the time-median image of the cutout scaled to the integration (the scale is the ratio of the
  good aperture pixels' weighted sum to the template's over the same pixels); its variance is
  the time-median variance of that pixel times the scale. For a point source this keeps the
  light curve continuous where masking and scaling by area would not (the PSF is not flat).
  Such rows get :data:`FLAG_REPLACED`.
* A pixel bad in *every* integration has no template: it is left out and the aperture sum is
  scaled by ``total aperture area / used area`` (:data:`FLAG_AREA_SCALED`). This is a
  constant factor along the series and leaves relative fluxes unchanged.
* An integration with no good aperture pixel gives a NaN row with :data:`FLAG_NO_DATA`.
* Annulus: the background mean uses the good pixels only (a mean needs no replacement);
  no good annulus pixel -> NaN background and net flux, :data:`FLAG_NO_BACKGROUND`.
"""
from __future__ import annotations

import warnings

import numpy as np
from photutils.geometry import circular_overlap_grid

__all__ = [
    "FLAG_REPLACED", "FLAG_AREA_SCALED", "FLAG_NO_DATA", "FLAG_NO_BACKGROUND",
    "FLAG_OFF_EDGE", "FLAG_CENTROID_FAILED", "FLAG_NAMES",
    "circle_weights", "annulus_weights", "source_centroids", "aperture_photometry",
]

#: some aperture pixels were flagged in this integration and replaced from the template
FLAG_REPLACED = 1
#: aperture pixels bad in every integration were left out; the sum is scaled by area
FLAG_AREA_SCALED = 2
#: no good aperture pixel in this integration: the row is NaN
FLAG_NO_DATA = 4
#: no good annulus pixel: background and net flux are NaN
FLAG_NO_BACKGROUND = 8
#: the aperture or annulus extends past the edge of the subarray
FLAG_OFF_EDGE = 16
#: the per-integration centroid failed; the exposure's median centroid was used
FLAG_CENTROID_FAILED = 32

FLAG_NAMES = {FLAG_REPLACED: "aperture pixels replaced from the time-median image",
              FLAG_AREA_SCALED: "always-bad aperture pixels excluded, sum scaled by area",
              FLAG_NO_DATA: "no good aperture pixel (row is NaN)",
              FLAG_NO_BACKGROUND: "no good annulus pixel (background and net flux NaN)",
              FLAG_OFF_EDGE: "aperture or annulus extends past the subarray edge",
              FLAG_CENTROID_FAILED: "centroid failed; median centroid used"}


def circle_weights(shape, xcenter, ycenter, radius, origin=(0, 0)):
    """Exact overlap of a circle with each pixel of a grid.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the grid.
    xcenter, ycenter : float
        Circle centre (pixels, 0-based, in the frame of the full image).
    radius : float
        Radius (pixels).
    origin : tuple of int
        ``(y0, x0)``: full-image pixel of the grid's first pixel (for cutouts).

    Returns
    -------
    ndarray float64, ``shape``
        Fraction of each pixel inside the circle (0..1).
    """
    ny, nx = shape
    if radius <= 0:
        return np.zeros(shape)
    y0, x0 = origin
    xmin = x0 - 0.5 - xcenter
    ymin = y0 - 0.5 - ycenter
    return circular_overlap_grid(xmin, xmin + nx, ymin, ymin + ny, nx, ny, float(radius), 1, 1)


def annulus_weights(shape, xcenter, ycenter, radius_inner, radius_outer, origin=(0, 0)):
    """Exact overlap of a circular annulus with each pixel (see :func:`circle_weights`)."""
    return (circle_weights(shape, xcenter, ycenter, radius_outer, origin)
            - circle_weights(shape, xcenter, ycenter, radius_inner, origin))


def _box(center, half, size):
    lo = int(np.floor(center + 0.5)) - half
    return max(lo, 0), min(lo + 2 * half + 1, size)


def source_centroids(data, bad, xcenter, ycenter, box_width, source_radius=4.0, chunk_bytes=32e6):
    """Centre-of-mass centroid of the source in each integration (as jwst/photutils ``centroid_com``).

    Each integration's background is the median of the good pixels farther than
    ``source_radius`` from ``(xcenter, ycenter)``; the background-subtracted, bad-pixel-zeroed
    image inside a ``box_width`` square box centred on the pixel nearest the guess gives the
    centroid.

    Parameters
    ----------
    data : ndarray, (nints, ny, nx)
    bad : ndarray of bool, (nints, ny, nx)
    xcenter, ycenter : float
        Guess (0-based pixels).
    box_width : int
        Odd box width (pixels).
    source_radius : float
        Radius (pixels) excluded from the background estimate.
    chunk_bytes : float
        Work on this many bytes of float64 at a time (bounded memory).

    Returns
    -------
    cx, cy : ndarray float64, (nints,)
        Centroids (0-based pixels); NaN where the box holds no positive flux.
    """
    nints, ny, nx = data.shape
    half = int(box_width) // 2
    xa, xb = _box(xcenter, half, nx)
    ya, yb = _box(ycenter, half, ny)
    yy, xx = np.mgrid[:ny, :nx]
    outside = (xx - xcenter) ** 2 + (yy - ycenter) ** 2 >= source_radius ** 2
    bx = np.arange(xa, xb, dtype=float)
    by = np.arange(ya, yb, dtype=float)
    cx = np.full(nints, np.nan)
    cy = np.full(nints, np.nan)
    step = max(1, int(chunk_bytes // (ny * nx * 8)))
    for i0 in range(0, nints, step):
        d = np.array(data[i0:i0 + step], dtype=np.float64)
        b = np.asarray(bad[i0:i0 + step])
        d[b] = np.nan
        with warnings.catch_warnings():             # a fully flagged integration: NaN median
            warnings.simplefilter("ignore", RuntimeWarning)
            bkg = np.nanmedian(np.where(outside[None], d, np.nan).reshape(len(d), -1), axis=1)
        bkg = np.where(np.isfinite(bkg), bkg, 0.0)
        sub = d[:, ya:yb, xa:xb] - bkg[:, None, None]
        sub = np.where(np.isfinite(sub), sub, 0.0)
        tot = sub.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            x = (sub.sum(axis=1) * bx).sum(axis=1) / tot
            y = (sub.sum(axis=2) * by).sum(axis=1) / tot
        ok = tot > 0
        cx[i0:i0 + step] = np.where(ok, x, np.nan)
        cy[i0:i0 + step] = np.where(ok, y, np.nan)
    return cx, cy


def aperture_photometry(data, var, bad, xcenter, ycenter, radius=3.0, radius_inner=4.0,
                        radius_outer=5.0, block_integrations=2048):
    """Aperture sums, annulus background and net flux of one source in every integration.

    Parameters
    ----------
    data : ndarray, (nints, ny, nx)
        Images (any unit U per pixel, e.g. electron, Jy, DN/s).
    var : ndarray, (nints, ny, nx)
        Variance of ``data`` (U**2).
    bad : ndarray of bool, (nints, ny, nx)
        Pixels not to use (DO_NOT_USE); non-finite ``data``/``var`` are added.
    xcenter, ycenter : float or ndarray (nints,)
        Aperture centre (0-based pixels), fixed or one per integration.
    radius : float
        Aperture radius (pixels).
    radius_inner, radius_outer : float
        Background annulus radii (pixels); ``radius_outer <= radius_inner`` means no background.
    block_integrations : int
        Integrations measured at a time after the time-median template is formed (bounded
        scratch memory; the results do not depend on it).

    Returns
    -------
    dict of ndarray (nints,)
        ``aperture_sum``, ``aperture_sum_err``, ``annulus_sum``, ``annulus_sum_err``,
        ``annulus_mean``, ``annulus_mean_err``, ``aperture_bkg``, ``aperture_bkg_err``,
        ``net_aperture_sum``, ``net_aperture_sum_err`` (U, or U per pixel for the means),
        ``xcenter``, ``ycenter`` and ``flag`` (int, OR of the ``FLAG_*`` bits), plus scalars
        ``aperture_area`` and ``annulus_area`` (pixels, inside the subarray).
    """
    nints, ny, nx = data.shape
    xc = np.broadcast_to(np.asarray(xcenter, float), (nints,)).copy()
    yc = np.broadcast_to(np.asarray(ycenter, float), (nints,)).copy()
    do_bkg = radius_outer > radius_inner
    rmax = max(radius, radius_outer if do_bkg else radius)
    # cutout covering every integration's aperture and annulus
    x0 = max(int(np.floor(np.nanmin(xc) - rmax - 0.5)), 0)
    x1 = min(int(np.ceil(np.nanmax(xc) + rmax + 0.5)) + 1, nx)
    y0 = max(int(np.floor(np.nanmin(yc) - rmax - 0.5)), 0)
    y1 = min(int(np.ceil(np.nanmax(yc) + rmax + 0.5)) + 1, ny)
    cut = (slice(None), slice(y0, y1), slice(x0, x1))
    shape = (y1 - y0, x1 - x0)
    origin = (y0, x0)

    # time-median template of the cutout, for pixels bad in some integrations only
    d = np.asarray(data[cut])
    v = np.asarray(var[cut])
    b = np.asarray(bad[cut], dtype=bool) | ~np.isfinite(d) | ~np.isfinite(v)
    with warnings.catch_warnings():                 # all-NaN columns: pixels bad in every integration
        warnings.simplefilter("ignore", RuntimeWarning)
        template = np.nanmedian(np.where(b, np.nan, d.astype(np.float64)), axis=0)
        template_var = np.nanmedian(np.where(b, np.nan, v.astype(np.float64)), axis=0)
    has_template = np.isfinite(template) & np.isfinite(template_var)

    fixed = np.all(xc == xc[0]) and np.all(yc == yc[0])
    if fixed:
        wa_fixed = circle_weights(shape, xc[0], yc[0], radius, origin)[None]
        wb_fixed = (annulus_weights(shape, xc[0], yc[0], radius_inner, radius_outer, origin)[None]
                    if do_bkg else np.zeros((1,) + shape))
    area_ap = np.pi * radius ** 2
    area_an = np.pi * (radius_outer ** 2 - radius_inner ** 2) if do_bkg else 0.0
    names = ("aperture_sum", "aperture_sum_err", "annulus_sum", "annulus_sum_err", "annulus_mean",
             "annulus_mean_err", "aperture_bkg", "aperture_bkg_err", "net_aperture_sum",
             "net_aperture_sum_err", "inside_ap", "inside_an")
    out = {k: np.full(nints, np.nan) for k in names}
    flag = np.zeros(nints, np.int32)
    step = max(1, int(block_integrations))
    for i0 in range(0, nints, step):
        sl = slice(i0, min(i0 + step, nints))
        if fixed:
            wa, wb = wa_fixed, wb_fixed
        else:
            wa = np.stack([circle_weights(shape, x, y, radius, origin) for x, y in zip(xc[sl], yc[sl])])
            wb = (np.stack([annulus_weights(shape, x, y, radius_inner, radius_outer, origin)
                            for x, y in zip(xc[sl], yc[sl])]) if do_bkg else np.zeros_like(wa))
        res, fl = _measure_block(d[sl].astype(np.float64), v[sl].astype(np.float64), b[sl], wa, wb,
                                 template, template_var, has_template, area_ap, area_an, do_bkg)
        for k in names:
            out[k][sl] = res[k]
        flag[sl] = fl
    inside_ap, inside_an = out.pop("inside_ap"), out.pop("inside_an")
    out.update(xcenter=xc, ycenter=yc, flag=flag, aperture_area=float(np.median(inside_ap)),
               annulus_area=float(np.median(inside_an)))
    return out


def _measure_block(d, v, b, wa, wb, template, template_var, has_template, area_ap, area_an, do_bkg):
    """Per-integration results of :func:`aperture_photometry` for a block of integrations."""
    n = d.shape[0]
    flag = np.zeros(n, np.int32)
    # parts of the aperture/annulus outside the subarray
    inside_ap = np.broadcast_to(wa.sum(axis=(1, 2)), (n,))
    inside_an = np.broadcast_to(wb.sum(axis=(1, 2)), (n,))
    off = inside_ap < area_ap * (1 - 1e-9)
    if do_bkg:
        off = off | (inside_an < area_an * (1 - 1e-9))
    flag[off] |= FLAG_OFF_EDGE

    fillable = b & has_template[None]
    usable = ~b | fillable                      # pixels entering the aperture sum
    good_ap = (~b) & has_template[None] & (wa > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        num = (np.where(good_ap, wa * d, 0.0)).sum(axis=(1, 2))
        den = (np.where(good_ap, wa * template[None], 0.0)).sum(axis=(1, 2))
        scale = np.where(den != 0, num / den, np.nan)
    df = np.where(fillable, scale[:, None, None] * template[None], d)
    vf = np.where(fillable, np.abs(scale[:, None, None]) * template_var[None], v)
    df = np.where(usable, df, 0.0)
    vf = np.where(usable, vf, 0.0)
    w_used = np.where(usable, wa, 0.0).sum(axis=(1, 2))
    replaced = (fillable & (wa > 0)).any(axis=(1, 2))
    flag[replaced] |= FLAG_REPLACED
    area_scaled = w_used < inside_ap * (1 - 1e-9)
    flag[area_scaled] |= FLAG_AREA_SCALED
    no_good = ~((~b) & (wa > 0)).any(axis=(1, 2))
    flag[no_good] |= FLAG_NO_DATA
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = inside_ap / w_used
        aperture_sum = (wa * df).sum(axis=(1, 2)) * ratio
        aperture_sum_err = np.sqrt((wa ** 2 * vf).sum(axis=(1, 2))) * ratio
    aperture_sum[no_good] = np.nan
    aperture_sum_err[no_good] = np.nan

    if do_bkg:
        wbg = np.where(b, 0.0, wb)
        wsum = wbg.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            annulus_mean = (wbg * np.where(b, 0.0, d)).sum(axis=(1, 2)) / wsum
            annulus_mean_err = np.sqrt((wbg ** 2 * np.where(b, 0.0, v)).sum(axis=(1, 2))) / wsum
        nobkg = ~(wsum > 0)
        annulus_mean[nobkg] = np.nan
        annulus_mean_err[nobkg] = np.nan
        flag[nobkg] |= FLAG_NO_BACKGROUND
        annulus_sum = annulus_mean * inside_an
        annulus_sum_err = annulus_mean_err * inside_an
        aperture_bkg = annulus_mean * inside_ap
        aperture_bkg_err = annulus_mean_err * inside_ap
        net = aperture_sum - aperture_bkg
        net_err = np.hypot(aperture_sum_err, aperture_bkg_err)
    else:
        nan = np.full(n, np.nan)
        annulus_sum = annulus_sum_err = annulus_mean = annulus_mean_err = nan
        aperture_bkg = aperture_bkg_err = nan
        net, net_err = aperture_sum.copy(), aperture_sum_err.copy()
    return {
        "aperture_sum": aperture_sum, "aperture_sum_err": aperture_sum_err,
        "annulus_sum": annulus_sum, "annulus_sum_err": annulus_sum_err,
        "annulus_mean": annulus_mean, "annulus_mean_err": annulus_mean_err,
        "aperture_bkg": aperture_bkg, "aperture_bkg_err": aperture_bkg_err,
        "net_aperture_sum": net, "net_aperture_sum_err": net_err,
        "inside_ap": inside_ap, "inside_an": inside_an,
    }, flag
