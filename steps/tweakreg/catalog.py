"""Source detection for tweakreg: the reference pipeline's ``make_tweakreg_catalog`` (jwst >= 1.13).

Arrays in, an astropy Table out; no files, no Product.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
from astropy.table import Table

log = logging.getLogger("webbcal.step.tweakreg")

STARFINDERS = ("iraf", "dao", "segmentation")


def background_and_rms(data, box_size, mask=None):
    """Smooth 2-D background and background RMS (photutils ``Background2D``).

    Parameters
    ----------
    data : numpy.ndarray
        Image (any unit).
    box_size : int
        Mesh box size (pixels); reduced to the image size for small images.
    mask : numpy.ndarray of bool, optional
        True where pixels are not to be used (no coverage, DO_NOT_USE).

    Returns
    -------
    background, rms : numpy.ndarray
        Same shape and unit as ``data``.
    """
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MedianBackground

    ny, nx = data.shape
    box = int(max(8, min(box_size, ny, nx)))
    good = np.isfinite(data) if mask is None else (~mask & np.isfinite(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bkg = Background2D(np.where(good, data, 0.0), (box, box), coverage_mask=~good,
                               filter_size=(1, 1) if box >= min(ny, nx) else (3, 3),
                               sigma_clip=SigmaClip(sigma=3.0, maxiters=10),
                               bkg_estimator=MedianBackground(), exclude_percentile=50.0)
        return np.asarray(bkg.background), np.asarray(bkg.background_rms)
    except ValueError:
        from astropy.stats import sigma_clipped_stats

        vals = data[good]
        if vals.size == 0:
            return np.zeros_like(data, dtype=float), np.ones_like(data, dtype=float)
        _, med, std = sigma_clipped_stats(vals, sigma=3.0, maxiters=10)
        return np.full(data.shape, med), np.full(data.shape, std if std > 0 else 1.0)


def make_tweakreg_catalog(data, snr_threshold=10.0, *, mask=None, bkg_boxsize=400,
                          starfinder="iraf", kernel_fwhm=2.5, brightest=200, peakmax=None,
                          npixels=10, connectivity=8, nlevels=32, contrast=0.001,
                          sharplo=None, sharphi=None, roundlo=None, roundhi=None,
                          minsep_fwhm=1.5, sigma_radius=1.5, exclude_border=False,
                          recentroid=True):
    """Detect point-like sources for alignment.

    The background (``Background2D`` over ``bkg_boxsize`` boxes) is subtracted and the
    detection threshold is ``snr_threshold`` times the median background RMS.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image (e.g. MJy/sr).
    snr_threshold : float
        Detection threshold in units of the background RMS.
    mask : numpy.ndarray of bool, optional
        True for pixels to ignore.
    bkg_boxsize : int
        Background mesh size (pixels).
    starfinder : {'iraf', 'dao', 'segmentation'}
        photutils ``IRAFStarFinder``, ``DAOStarFinder`` or ``SourceFinder`` + ``SourceCatalog``.
    kernel_fwhm : float
        FWHM (pixels) of the Gaussian detection kernel.
    brightest : int or None
        Keep only the ``brightest`` sources (by flux).
    peakmax : float or None
        Reject sources whose peak exceeds this (saturated stars).
    npixels, connectivity, nlevels, contrast : segmentation parameters.
    sharplo, sharphi, roundlo, roundhi : float or None
        Sharpness / roundness limits of the star finders (photutils defaults when None).
    minsep_fwhm : float
        Minimum separation of IRAF sources in units of ``kernel_fwhm``.
    sigma_radius : float
        Kernel truncation radius in sigma.
    exclude_border : bool
        Drop sources too close to the border for the kernel.

    Returns
    -------
    astropy.table.Table
        Columns ``id``, ``xcentroid``, ``ycentroid`` (0-based pixels), ``flux`` (data unit x
        pixels for segmentation, finder-specific otherwise).
    """
    starfinder = str(starfinder).lower()
    if starfinder in ("daostarfinder",):
        starfinder = "dao"
    if starfinder in ("irafstarfinder",):
        starfinder = "iraf"
    if starfinder in ("sourcefinder",):
        starfinder = "segmentation"
    if starfinder not in STARFINDERS:
        raise ValueError(f"starfinder={starfinder!r}: expected one of {STARFINDERS}")
    data = np.asarray(data, dtype=float)
    bad = ~np.isfinite(data) if mask is None else (np.asarray(mask, bool) | ~np.isfinite(data))
    empty = Table({"id": np.zeros(0, int), "xcentroid": np.zeros(0), "ycentroid": np.zeros(0),
                   "flux": np.zeros(0)})
    if bad.all():
        return empty
    bkg, rms = background_and_rms(data, bkg_boxsize, bad)
    sub = np.where(bad, 0.0, data - bkg)
    noise = float(np.median(rms[~bad]))
    if not np.isfinite(noise) or noise <= 0:
        noise = float(np.std(sub[~bad])) or 1.0
    threshold = snr_threshold * noise

    if starfinder in ("dao", "iraf"):
        from photutils.detection import DAOStarFinder, IRAFStarFinder

        kw = dict(exclude_border=exclude_border, n_brightest=brightest, peak_max=peakmax,
                  sigma_radius=sigma_radius)
        if starfinder == "dao":
            if sharplo is not None or sharphi is not None:
                kw["sharpness_range"] = (0.2 if sharplo is None else sharplo, 1.0 if sharphi is None else sharphi)
            if roundlo is not None or roundhi is not None:
                kw["roundness_range"] = (-1.0 if roundlo is None else roundlo, 1.0 if roundhi is None else roundhi)
            finder = DAOStarFinder(threshold, kernel_fwhm, **kw)
        else:
            if sharplo is not None or sharphi is not None:
                kw["sharpness_range"] = (0.5 if sharplo is None else sharplo, 2.0 if sharphi is None else sharphi)
            if roundlo is not None or roundhi is not None:
                kw["roundness_range"] = (0.0 if roundlo is None else roundlo, 0.2 if roundhi is None else roundhi)
            kw["min_separation"] = minsep_fwhm * kernel_fwhm
            finder = IRAFStarFinder(threshold, kernel_fwhm, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = finder.find_stars(sub, mask=bad)
        if found is None or len(found) == 0:
            return empty
        fx = np.asarray(found["x_centroid"], float)
        fy = np.asarray(found["y_centroid"], float)
        keep = np.ones(fx.size, bool)
        if recentroid:
            fx, fy, keep = refine_centroids(sub, fx, fy, kernel_fwhm, mask=bad)
        out = Table({"id": np.arange(1, len(found) + 1), "xcentroid": fx, "ycentroid": fy,
                     "flux": np.asarray(found["flux"], float)})[keep]
    else:
        from astropy.convolution import convolve
        from photutils.segmentation import SourceCatalog, SourceFinder, make_2dgaussian_kernel

        size = 2 * int(np.ceil(2 * kernel_fwhm)) + 1
        kernel = make_2dgaussian_kernel(kernel_fwhm, size=size)
        conv = convolve(sub, kernel, mask=bad, normalize_kernel=True)
        try:
            import skimage  # noqa: F401 - photutils deblending needs scikit-image
            deblend = True
        except ImportError:
            log.warning("scikit-image is not installed: segmentation sources are not deblended")
            deblend = False
        finder = SourceFinder(npixels, connectivity=connectivity, deblend=deblend, n_levels=nlevels,
                              contrast=contrast, progress_bar=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            segm = finder(conv, threshold, mask=bad)
        if segm is None:
            return empty
        cat = SourceCatalog(sub, segm, convolved_data=conv, mask=bad)
        flux = np.asarray(cat.segment_flux, float)
        keep = np.ones(len(flux), bool)
        if peakmax is not None:
            keep &= np.asarray(cat.max_value, float) <= peakmax
        x = np.asarray(cat.x_centroid, float)
        y = np.asarray(cat.y_centroid, float)
        keep &= np.isfinite(x) & np.isfinite(y)
        out = Table({"id": np.asarray(cat.label)[keep], "xcentroid": x[keep], "ycentroid": y[keep],
                     "flux": flux[keep]})
        if brightest is not None and len(out) > brightest:
            out.sort("flux", reverse=True)
            out = out[:brightest]
    good = np.isfinite(out["xcentroid"]) & np.isfinite(out["ycentroid"])
    return out[good]


def refine_centroids(data, x, y, fwhm, *, mask=None, niter=20, tol=1e-4):
    """Windowed (Gaussian-weighted) centroids, iterated as SExtractor's XWIN_IMAGE.

    ``x_{k+1} = x_k + 2 sum(w I (x_i - x_k)) / sum(w I)`` with ``w = exp(-r^2 / 2 s^2)`` and
    ``s = fwhm / 2.3548``. Unbiased for symmetric PSFs whatever the pixel phase, unlike the
    moment centroids of ``IRAFStarFinder`` (errors up to ~0.2 pixel on a well sampled PSF).

    Parameters
    ----------
    data : numpy.ndarray
        Background-subtracted image.
    x, y : numpy.ndarray
        Initial 0-based centroids (pixels).
    fwhm : float
        PSF FWHM (pixels) setting the window.
    mask : numpy.ndarray of bool, optional
        Pixels to ignore.
    niter : int
        Maximum iterations.
    tol : float
        Convergence (pixels).

    Returns
    -------
    x, y : numpy.ndarray
        Refined centroids.
    good : numpy.ndarray of bool
        False where the iteration failed: the window reaches the image edge (a truncated star
        has a biased centroid) or ran away (> fwhm from the start); x, y keep the input there.
    """
    ny, nx = data.shape
    sw = max(fwhm, 1.0) / 2.3548
    half = int(np.ceil(4 * sw))
    xs, ys = np.array(x, float), np.array(y, float)
    good = np.zeros(xs.size, bool)
    for k in range(xs.size):
        x0, y0 = xs[k], ys[k]
        xc, yc = x0, y0
        ok = True
        for _ in range(niter):
            ix, iy = int(round(xc)), int(round(yc))
            if ix - half < 0 or iy - half < 0 or ix + half >= nx or iy + half >= ny:
                ok = False
                break
            cut = data[iy - half:iy + half + 1, ix - half:ix + half + 1]
            yy, xx = np.mgrid[iy - half:iy + half + 1, ix - half:ix + half + 1]
            w = np.exp(-((xx - xc) ** 2 + (yy - yc) ** 2) / (2 * sw * sw))
            if mask is not None:
                w = w * ~mask[iy - half:iy + half + 1, ix - half:ix + half + 1]
            wi = w * cut
            tot = wi.sum()
            if not np.isfinite(tot) or tot <= 0:
                ok = False
                break
            dx = 2 * (wi * (xx - xc)).sum() / tot
            dy = 2 * (wi * (yy - yc)).sum() / tot
            xc, yc = xc + dx, yc + dy
            if np.hypot(xc - x0, yc - y0) > fwhm:
                ok = False
                break
            if abs(dx) < tol and abs(dy) < tol:
                break
        if ok:
            xs[k], ys[k] = xc, yc
            good[k] = True
    return xs, ys, good


def filter_by_bounding_box(catalog, bounding_box):
    """Drop sources outside ``bounding_box`` ((xmin, xmax), (ymin, ymax)) of a gwcs."""
    if bounding_box is None or len(catalog) == 0:
        return catalog
    (x0, x1), (y0, y1) = bounding_box
    x, y = catalog["xcentroid"], catalog["ycentroid"]
    keep = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return catalog[keep]
