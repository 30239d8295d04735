"""Source catalog of a combined (i2d) image: the reference pipeline's ``source_catalog`` algorithm.

Arrays in, an astropy Table and a segmentation array out; no files, no Product.

With an APCORR reference (``aperture_params``, see
:mod:`steps.source_catalog.reference_data`) the three apertures, the local background annulus
and the aperture corrections come from the reference, as in jwst. The reference describes the
PSF sampled on the detector pixels; a drizzled image of an undersampled PSF is broader in its
core by an amount that depends on the dither positions relative to the output grid (4-12 % less
flux inside the 70 % radius for the simulated NIRCam F200W PSF). By default
(``apcorr_growth=True``) the correction of the largest aperture is therefore the ratio of the
fluxes within a larger radius ``R`` (the reference's largest row at least a pixel inside the
background annulus: several FWHM, where resampling no longer moves flux across the aperture
edge) and within the largest aperture, measured on the image's bright isolated sources, times
the reference's correction for ``R`` (:func:`growth_apcorr`). With ``apcorr_growth=False``, or
fewer than 3 usable sources, the reference's correction of the largest aperture is used alone
(jwst's behaviour).

Without an APCORR reference the point-spread function is modelled as a circular Gaussian whose
FWHM is measured on the image (median adaptive second moments of the bright compact sources);
the aperture for encircled energy ``ee`` (%) then has the radius
``r = sigma * sqrt(-2 ln(1 - ee/100))`` pixels and the local background annulus runs from 3 to
5 FWHM. The aperture correction of the largest aperture (``aper_total_flux``) is measured on
the image, from the curve of growth of the brightest isolated sources out to 10 FWHM
(:func:`curve_of_growth_apcorr`): JWST's diffraction-limited PSFs put ~10 % more flux outside
``r3`` than a Gaussian with the core's FWHM does. With fewer than 3 usable sources it falls
back to ``1 / EE(r3)`` for a Gaussian of variance ``sigma^2 + 1/12`` (pixel-uniform aperture
sums widen the sampled profile by one pixel box; ~1/0.68 for ee3 = 70 and a 3-pixel FWHM),
which underestimates the total flux of an Airy-like PSF by ~10 %.

The catalog's ``meta`` records which was used (``apcorr_method``, ``apcorr_reference``).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
from astropy.table import QTable, Table

log = logging.getLogger("webbcal.step.source_catalog")

FWHM_TO_SIGMA = 1.0 / 2.354820045


def adaptive_sigma(data, x, y, sigma0, niter=20):
    """Gaussian sigma (pixels) of a source from adaptive (Gaussian-weighted) second moments.

    With a weight of the source's own width the weighted second moment is sigma^2 / 2; the
    iteration converges to the effective (pixel-integrated) Gaussian sigma.

    Returns NaN when the window leaves the image or the moments fail.
    """
    ny, nx = data.shape
    s = float(sigma0)
    for _ in range(niter):
        half = int(np.ceil(4 * s))
        ix, iy = int(round(x)), int(round(y))
        if ix - half < 0 or iy - half < 0 or ix + half >= nx or iy + half >= ny or s <= 0:
            return np.nan
        yy, xx = np.mgrid[iy - half:iy + half + 1, ix - half:ix + half + 1]
        cut = data[iy - half:iy + half + 1, ix - half:ix + half + 1]
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        w = np.exp(-r2 / (2 * s * s)) * cut
        tot = w.sum()
        if not np.isfinite(tot) or tot <= 0:
            return np.nan
        m = (w * r2).sum() / tot / 2.0                 # per-axis weighted second moment
        if m <= 0:
            return np.nan
        new = np.sqrt(2 * m)                          # sigma_w = sigma -> M = sigma^2 / 2
        if abs(new - s) < 1e-5:
            s = new
            break
        s = new
    return s


#: curve of growth: total-flux radius, local background annulus (units of the PSF FWHM)
COG_RADIUS_FWHM = 10.0
COG_ANNULUS_FWHM = (11.0, 14.0)
COG_MIN_STARS = 3
COG_MAX_STARS = 25


def curve_of_growth_apcorr(data, bad, x, y, snr, r3, psf_fwhm, *, rms=0.0,
                           radius_fwhm=COG_RADIUS_FWHM, annulus_fwhm=COG_ANNULUS_FWHM,
                           min_stars=COG_MIN_STARS, max_stars=COG_MAX_STARS):
    """Aperture correction ``F(R) / F(r3)`` measured on the image (curve of growth).

    JWST's PSFs are diffraction patterns whose wings hold several per cent of the flux
    beyond the radius a Gaussian fitted to the core would say; without an APCORR reference
    the correction from the smallest total-flux aperture is therefore measured on the image
    itself, as DAOGROW-style photometry does: on the brightest isolated compact sources, the
    flux within ``R = radius_fwhm * FWHM`` over the flux within ``r3``, on the image less its
    mesh background (a local annulus would hold PSF wings: ~1e-5 of the flux per pixel at
    10-15 FWHM, a ~1 % bias over the large aperture). Sources need no other source within
    ``R + 2 FWHM``, ``annulus_fwhm[1]`` FWHM of image around them and no masked pixel within
    ``R``. Flux beyond ``R`` (for an Airy pattern ~0.5 % at 10 FWHM) is not included.

    Parameters
    ----------
    data : numpy.ndarray
        Background-subtracted image (any unit).
    bad : numpy.ndarray of bool
        Pixels not to use.
    x, y : numpy.ndarray
        Source centroids (0-based pixels).
    snr : numpy.ndarray
        Source signal-to-noise (for choosing the brightest).
    r3 : float
        Radius (pixels) of the aperture to correct.
    psf_fwhm : float
        PSF FWHM (pixels).
    rms : float
        Background RMS per pixel (data unit), for the weights.

    Returns
    -------
    apcorr : float or None
        None when fewer than ``min_stars`` usable sources (the caller falls back to a model).
    info : dict
        ``n`` (sources used), ``radius``, ``ratios`` or ``why``.
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    ny, nx = data.shape
    big = radius_fwhm * psf_fwhm
    a_out = annulus_fwhm[1] * psf_fwhm
    pos = np.column_stack([x, y])
    ok = np.all(np.isfinite(pos), axis=1) & np.isfinite(snr)
    ok &= (x > a_out) & (x < nx - 1 - a_out) & (y > a_out) & (y < ny - 1 - a_out)
    if len(x) > 1:
        d = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
        np.fill_diagonal(d, np.inf)
        ok &= d.min(axis=1) > big + 2 * psf_fwhm
    cand = np.flatnonzero(ok)
    if cand.size < min_stars:
        return None, {"why": f"{cand.size} isolated sources within the image, {min_stars} needed"}
    cand = cand[np.argsort(-snr[cand])][:max_stars]
    p = pos[cand]
    img = np.where(bad, 0.0, data)
    # no local annulus: at 10-15 FWHM a diffraction PSF still puts ~1e-5 of its flux per pixel,
    # which over the large aperture's area is a ~1 % bias; the mesh background is used instead
    bkg = np.zeros(len(p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = CircularAperture(p, r3)
        large = CircularAperture(p, big)
        f3 = np.asarray(aperture_photometry(img, small, method="exact")["aperture_sum"], float)
        fb = np.asarray(aperture_photometry(img, large, method="exact")["aperture_sum"], float)
        nbad = np.asarray(aperture_photometry(bad.astype(float), large, method="center")["aperture_sum"], float)
    f3 = f3 - bkg * small.area
    fb = fb - bkg * large.area
    use = (nbad == 0) & np.isfinite(f3) & np.isfinite(fb) & (f3 > 0) & (fb > 0)
    if use.sum() < min_stars:
        return None, {"why": f"{int(use.sum())} sources with a clean curve of growth, {min_stars} needed"}
    ratio = fb[use] / f3[use]
    # weight: the large aperture's background noise dominates the ratio's error
    noise = np.sqrt(max(rms, 1e-30) ** 2 * large.area + np.abs(fb[use]) * 0.0)
    w = (f3[use] / noise) ** 2
    apcorr, keep = _clipped_weighted_mean(ratio, w, min_stars)
    if not 1.0 <= apcorr < 5.0:
        return None, {"why": f"implausible curve-of-growth correction {apcorr:.3f}"}
    return apcorr, {"n": int(keep.sum()), "radius": big, "ratios": ratio[keep]}


#: growth correction with a reference: sources used (brightest first), and the fewest accepted
GROWTH_MIN_STARS = 3
GROWTH_MAX_STARS = 25


def growth_apcorr(f_small, f_big, err_big, x, y, snr, nbad_big, shape, r_out, *,
                  min_stars=GROWTH_MIN_STARS, max_stars=GROWTH_MAX_STARS):
    """Curve-of-growth ratio ``F(R) / F(r3)`` of the image's bright isolated sources.

    An APCORR reference gives the correction from an aperture to the total flux for the PSF
    sampled on the detector's pixels. Resampling (drizzle with ``pixfrac`` 1 moves each input
    pixel's flux over up to four output pixels) broadens an undersampled PSF by an amount that
    depends on the dither positions relative to the output grid: within the small apertures of
    the encircled energies 30-70 % the flux can be several per cent below the reference's (4 %
    in the 3-dither NIRCam F200W simulation, 12 % for an output grid offset by half a pixel),
    while beyond a few FWHM it is unchanged (a local redistribution). The correction is therefore split, as in
    DAOGROW-style photometry: this ratio, measured on the image from the largest aperture
    ``r3`` to a radius ``R`` several FWHM out (both background-subtracted with the same local
    annulus), times the reference's correction for ``R``.

    Parameters
    ----------
    f_small, f_big : numpy.ndarray
        Background-subtracted fluxes within ``r3`` and ``R`` (any unit).
    err_big : numpy.ndarray
        1-sigma uncertainty of ``f_big`` (same unit).
    x, y : numpy.ndarray
        Centroids (0-based pixels) of every detected source.
    snr : numpy.ndarray
        Source signal-to-noise, to choose the brightest.
    nbad_big : numpy.ndarray
        Masked pixels within ``R`` of each source.
    shape : tuple of int
        Image shape (ny, nx).
    r_out : float
        Outer radius (pixels) of the background annulus: sources need no other detected
        source within ``r_out`` and the annulus inside the image.

    Returns
    -------
    ratio : float or None
        Weighted, clipped mean of ``f_big / f_small``; None with fewer than ``min_stars``
        usable sources or an implausible value (outside 1 .. 3).
    info : dict
        ``n`` (sources used) and ``ratios``, or ``why``.
    """
    ny, nx = shape
    f_small = np.asarray(f_small, float)
    f_big = np.asarray(f_big, float)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(f_small) & np.isfinite(f_big)
    ok &= (f_small > 0) & (f_big > 0) & (np.asarray(nbad_big) == 0) & np.isfinite(snr)
    ok &= (x > r_out + 1) & (x < nx - 2 - r_out) & (y > r_out + 1) & (y < ny - 2 - r_out)
    if len(x) > 1:
        d = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
        np.fill_diagonal(d, np.inf)
        ok &= np.nan_to_num(d, nan=np.inf).min(axis=1) > r_out
    cand = np.flatnonzero(ok)
    if cand.size < min_stars:
        return None, {"why": f"{cand.size} isolated sources with clean apertures, {min_stars} needed"}
    cand = cand[np.argsort(-np.asarray(snr)[cand])][:max_stars]
    ratio = f_big[cand] / f_small[cand]
    w = (f_small[cand] / np.maximum(np.asarray(err_big, float)[cand], 1e-300)) ** 2
    value, keep = _clipped_weighted_mean(ratio, w, min_stars)
    if not 1.0 <= value < 3.0:
        return None, {"why": f"implausible growth ratio {value:.3f}"}
    return value, {"n": int(keep.sum()), "ratios": ratio[keep]}


def _clipped_weighted_mean(ratio, w, min_stars):
    """Weighted mean of ``ratio`` after up to 3 rounds of 3-sigma clipping (MAD or weights)."""
    keep = np.ones(ratio.size, bool)
    for _ in range(3):
        med = np.median(ratio[keep])
        mad = 1.4826 * np.median(np.abs(ratio[keep] - med))
        spread = max(mad, np.sqrt(1.0 / np.sum(w[keep])) * 3, 1e-6)
        new = np.abs(ratio - med) < 3 * spread + 3 / np.sqrt(w)
        if new.sum() < min_stars or np.array_equal(new, keep):
            break
        keep = new
    return float(np.sum(w[keep] * ratio[keep]) / np.sum(w[keep])), keep


def make_source_catalog(data, err=None, *, mask=None, wcs=None, pixar_sr, bkg_boxsize=1000,
                        kernel_fwhm=2.0, snr_threshold=3.0, npixels=25, deblend=False,
                        aperture_ee=(30, 50, 70), ci1_star_threshold=2.0, ci2_star_threshold=1.8,
                        psf_fwhm=None, aperture_params=None, apcorr_growth=True):
    """Detect and measure sources.

    Parameters
    ----------
    data : numpy.ndarray
        Image in MJy/sr.
    err : numpy.ndarray, optional
        1-sigma uncertainty in MJy/sr.
    mask : numpy.ndarray of bool, optional
        True where pixels are not to be used (no coverage).
    wcs : gwcs.WCS, optional
        For ``sky_centroid`` (ICRS).
    pixar_sr : float
        Pixel area (sr): MJy/sr x pixar_sr x 1e6 = Jy per pixel.
    bkg_boxsize : int
        Background mesh (pixels), reduced to the image size.
    kernel_fwhm : float
        FWHM (pixels) of the Gaussian detection kernel.
    snr_threshold : float
        Detection threshold per pixel in units of the background RMS.
    npixels : int
        Minimum connected pixels of a source.
    deblend : bool
        Deblend overlapping sources (photutils, needs scikit-image).
    aperture_ee : tuple of 3 int
        Encircled energies (%) of the three apertures.
    ci1_star_threshold, ci2_star_threshold : float
        A source is a point source when CI_50_30 < ci1 and CI_70_50 < ci2 (jwst definition).
    psf_fwhm : float, optional
        PSF FWHM (pixels); measured on the image when None.
    aperture_params : dict, optional
        From an APCORR reference (:func:`steps.source_catalog.reference_data.aperture_parameters`,
        plus ``source``, the reference's name): aperture ``radii`` and ``bkg_annulus`` (image
        pixels) and ``apcorr`` of the apertures, ``growth`` (radius, apcorr) or None. None: no
        reference; radii from a Gaussian fitted to the image and a curve-of-growth correction
        measured on it (:func:`curve_of_growth_apcorr`).
    apcorr_growth : bool
        With ``aperture_params``: correct the largest aperture by the ratio, measured on the
        image's bright isolated sources, of the flux within the ``growth`` radius to that within
        the largest aperture, times the reference's ``apcorr`` of the ``growth`` radius
        (:func:`growth_apcorr`); False, or too few sources: the reference's ``apcorr`` of the
        largest aperture alone (as jwst).

    Returns
    -------
    catalog : astropy.table.QTable
        jwst columns (fluxes in Jy, AB magnitudes). ``meta`` records the aperture radii, the
        background annulus, the aperture correction and how it was obtained
        (``apcorr_method``: ``reference+growth``, ``reference``, ``curve_of_growth`` or
        ``gaussian``; ``apcorr_reference``: the reference's name or None).
    segm : numpy.ndarray of int32
        Segmentation image (0 = background).
    info : dict
        ``psf_fwhm``, ``radii``, ``apcorr``, ``bkg_annulus``, ``apcorr_method``.
    """
    from astropy.convolution import convolve
    from photutils.aperture import CircularAnnulus, CircularAperture, aperture_photometry
    from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel

    from steps.tweakreg.catalog import background_and_rms

    data = np.asarray(data, float)
    bad = ~np.isfinite(data) if mask is None else (np.asarray(mask, bool) | ~np.isfinite(data))
    bkg, rms = background_and_rms(data, bkg_boxsize, bad)
    sub = np.where(bad, 0.0, data - bkg)
    to_jy = float(pixar_sr) * 1e6
    if err is None:
        err = rms
    err = np.where(bad | ~np.isfinite(err), 0.0, np.asarray(err, float))
    size = 2 * int(np.ceil(1.5 * kernel_fwhm)) + 1
    kernel = make_2dgaussian_kernel(kernel_fwhm, size=size)
    with warnings.catch_warnings():
        # masked regions wider than the kernel (a mosaic's uncovered borders) stay NaN in the
        # smoothed image, as intended (they are masked in the detection too); astropy warns
        warnings.filterwarnings("ignore", message=".*NaN values detected post convolution.*")
        conv = convolve(sub, kernel, mask=bad, normalize_kernel=True)
    threshold = snr_threshold * rms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segm = detect_sources(conv, threshold, npixels, mask=bad)
        if segm is not None and deblend:
            try:
                segm = deblend_sources(conv, segm, npixels, progress_bar=False)
            except ImportError:
                log.warning("deblend=True needs scikit-image, which is not installed: not deblended")
    info = {}
    if segm is None:
        empty = _empty_catalog(aperture_ee)
        source = aperture_params.get("source") if aperture_params is not None else None
        empty.meta.update({"aperture_ee": [int(e) for e in aperture_ee],
                           "apcorr_method": "none (no sources)", "apcorr_reference": source,
                           "flux_unit": "Jy"})
        info.update(apcorr_method="none (no sources)", apcorr_reference=source)
        return empty, np.zeros(data.shape, np.int32), info

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat = SourceCatalog(sub * to_jy, segm, convolved_data=conv * to_jy, error=err * to_jy,
                            mask=bad, background=bkg * to_jy)
    x = np.asarray(cat.x_centroid, float)
    y = np.asarray(cat.y_centroid, float)
    n = len(x)

    # PSF model (Gaussian) for the aperture radii and corrections
    if psf_fwhm is None:
        snr = np.asarray(cat.segment_flux, float) / np.maximum(np.asarray(cat.segment_flux_err, float), 1e-30)
        order = np.argsort(-snr)[: max(5, min(50, n))]
        sig = np.array([adaptive_sigma(sub, x[k], y[k], kernel_fwhm * FWHM_TO_SIGMA) for k in order])
        sig = sig[np.isfinite(sig)]
        if sig.size:
            # compact sources: the smallest half of the bright ones
            sig = np.sort(sig)[: max(1, (sig.size + 1) // 2)]
            psf_fwhm = float(np.median(sig)) / FWHM_TO_SIGMA
        else:
            psf_fwhm = float(kernel_fwhm)
    ees = [float(e) for e in aperture_ee]
    snr_all = np.asarray(cat.segment_flux, float) / np.maximum(np.asarray(cat.segment_flux_err, float), 1e-30)
    info.update(psf_fwhm=psf_fwhm, apcorr_reference=None, apcorr_growth=None,
                apcorr_growth_radius=None, apcorr_stars=0)
    if aperture_params is None:
        sigma = psf_fwhm * FWHM_TO_SIGMA
        radii = [sigma * np.sqrt(-2.0 * np.log(1.0 - e / 100.0)) for e in ees]
        # aperture sums treat each pixel as uniform, which widens the sampled profile by one more
        # pixel box (variance + 1/12): the encircled energy actually inside r3 is for that width
        sigma_ap = np.sqrt(sigma ** 2 + 1.0 / 12.0)
        apcorr_gauss = 1.0 / (1.0 - np.exp(-radii[-1] ** 2 / (2 * sigma_ap ** 2)))
        r_in, r_out = 3.0 * psf_fwhm, 5.0 * psf_fwhm
        apcorr, cog = curve_of_growth_apcorr(sub, bad, x, y, snr_all, radii[-1], psf_fwhm,
                                             rms=float(np.nanmedian(rms[~bad])) if (~bad).any() else 0.0)
        if apcorr is None:
            apcorr = apcorr_gauss
            log.info("aperture correction from the Gaussian PSF model (%s)", cog.get("why", ""))
        info.update(apcorr=apcorr, apcorr_gaussian=apcorr_gauss,
                    apcorr_method="curve_of_growth" if cog.get("n") else "gaussian",
                    apcorr_stars=int(cog.get("n", 0)))
    else:
        radii = [float(r) for r in aperture_params["radii"]]
        if len(radii) != len(ees):
            raise ValueError(f"aperture_params: {len(radii)} radii for {len(ees)} apertures")
        r_in, r_out = (float(v) for v in aperture_params["bkg_annulus"])
        apcorr = float(aperture_params["apcorr"][-1])
        info.update(apcorr=apcorr, apcorr_method="reference",
                    apcorr_reference=aperture_params.get("source"))
    info.update(radii=radii, bkg_annulus=(r_in, r_out))

    pos = np.column_stack([x, y])
    finite = np.all(np.isfinite(pos), axis=1)
    pos_safe = np.where(finite[:, None], pos, 0.0)
    # local background: sigma-clipped median in the annulus (Jy per pixel)
    from photutils.aperture import ApertureStats

    ann = CircularAnnulus(pos_safe, r_in, r_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = ApertureStats(sub * to_jy, ann, mask=bad)
    bkg_pix = np.nan_to_num(np.atleast_1d(np.asarray(st.median, float)))
    bkg_std = np.nan_to_num(np.atleast_1d(np.asarray(st.std, float)))
    nann = np.maximum(np.atleast_1d(np.asarray(st.sum_aper_area.value if hasattr(st.sum_aper_area, "value") else st.sum_aper_area, float)), 1.0)
    bkg_err = bkg_std / np.sqrt(nann)

    t = QTable()
    t["label"] = np.asarray(cat.label, int)
    t["xcentroid"] = x
    t["ycentroid"] = y
    if wcs is not None:
        from astropy.coordinates import SkyCoord

        ra, dec = wcs(x, y, with_bounding_box=False)
        t["sky_centroid"] = SkyCoord(np.asarray(ra), np.asarray(dec), unit="deg", frame="icrs")
    t["aper_bkg_flux"] = bkg_pix
    t["aper_bkg_flux_err"] = bkg_err
    fluxes = {}
    for e, r in zip(ees, radii):
        ap = CircularAperture(pos_safe, r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ph = aperture_photometry(sub * to_jy, ap, error=err * to_jy, mask=bad, method="exact")
        area = ap.area
        f = np.asarray(ph["aperture_sum"], float) - bkg_pix * area
        fe = np.sqrt(np.asarray(ph["aperture_sum_err"], float) ** 2 + (bkg_err * area) ** 2)
        f[~finite] = np.nan
        name = f"aper{int(e)}"
        t[f"{name}_flux"] = f
        t[f"{name}_flux_err"] = fe
        fluxes[int(e)] = f
    last = fluxes[int(ees[-1])]
    growth = aperture_params.get("growth") if (aperture_params is not None and apcorr_growth) else None
    if growth is not None:
        big_r, big_apcorr = (float(v) for v in growth)
        ap = CircularAperture(pos_safe, big_r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ph = aperture_photometry(sub * to_jy, ap, error=err * to_jy, mask=bad, method="exact")
            nbad = aperture_photometry(bad.astype(float), ap, method="center")["aperture_sum"]
        nbad = np.asarray(nbad, float)
        f_big = np.asarray(ph["aperture_sum"], float) - bkg_pix * ap.area
        e_big = np.sqrt(np.asarray(ph["aperture_sum_err"], float) ** 2 + (bkg_err * ap.area) ** 2)
        f_big[~finite] = np.nan
        ratio, ginfo = growth_apcorr(last, f_big, e_big, x, y, snr_all, nbad, data.shape, r_out)
        if ratio is None:
            log.info("aperture correction from the APCORR reference alone (%s)", ginfo.get("why", ""))
        else:
            apcorr = ratio * big_apcorr
            info.update(apcorr=apcorr, apcorr_method="reference+growth", apcorr_growth=ratio,
                        apcorr_growth_radius=big_r, apcorr_stars=int(ginfo["n"]))
    t["aper_total_flux"] = last * apcorr
    t["aper_total_flux_err"] = t[f"aper{int(ees[-1])}_flux_err"] * apcorr
    for e in ees:
        t[f"aper{int(e)}_abmag"] = _abmag(t[f"aper{int(e)}_flux"])
    t["aper_total_abmag"] = _abmag(t["aper_total_flux"])
    e1, e2, e3 = (int(v) for v in ees)
    with np.errstate(divide="ignore", invalid="ignore"):
        ci_21 = fluxes[e2] / fluxes[e1]
        ci_32 = fluxes[e3] / fluxes[e2]
        ci_31 = fluxes[e3] / fluxes[e1]
    t[f"CI_{e2}_{e1}"] = ci_21
    t[f"CI_{e3}_{e2}"] = ci_32
    t[f"CI_{e3}_{e1}"] = ci_31
    t["is_extended"] = ~((ci_21 < ci1_star_threshold) & (ci_32 < ci2_star_threshold))
    # nearest neighbour
    if n > 1:
        d = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
        np.fill_diagonal(d, np.inf)
        j = np.argmin(d, axis=1)
        t["nn_label"] = t["label"][j]
        t["nn_dist"] = d[np.arange(n), j]
    else:
        t["nn_label"] = np.full(n, -1)
        t["nn_dist"] = np.full(n, np.nan)
    t["isophotal_flux"] = np.asarray(cat.segment_flux, float)
    t["isophotal_flux_err"] = np.asarray(cat.segment_flux_err, float)
    t["isophotal_abmag"] = _abmag(t["isophotal_flux"])
    t["isophotal_area"] = np.asarray(cat.area.value if hasattr(cat.area, "value") else cat.area, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t["kron_flux"] = np.asarray(cat.kron_flux, float)
        t["kron_flux_err"] = np.asarray(cat.kron_flux_err, float)
    t["semimajor_sigma"] = np.asarray(getattr(cat.semimajor_axis, "value", cat.semimajor_axis), float)
    t["semiminor_sigma"] = np.asarray(getattr(cat.semiminor_axis, "value", cat.semiminor_axis), float)
    t["ellipticity"] = np.asarray(getattr(cat.ellipticity, "value", cat.ellipticity), float)
    t["orientation"] = np.asarray(getattr(cat.orientation, "value", cat.orientation), float)
    t.meta.update({"psf_fwhm_pix": psf_fwhm, "aperture_radii_pix": [float(r) for r in radii],
                   "aperture_ee": [int(e) for e in ees], "apcorr": float(apcorr),
                   "apcorr_method": info["apcorr_method"],
                   "apcorr_reference": info["apcorr_reference"],
                   "apcorr_growth": info["apcorr_growth"],
                   "apcorr_growth_radius_pix": info["apcorr_growth_radius"],
                   "apcorr_stars": info["apcorr_stars"],
                   "bkg_annulus_pix": [float(r_in), float(r_out)], "flux_unit": "Jy"})
    return t, np.asarray(segm.data, np.int32), info


def _abmag(flux_jy):
    f = np.asarray(flux_jy, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, -2.5 * np.log10(f / 3631.0), np.nan)


def _empty_catalog(aperture_ee):
    cols = ["label", "xcentroid", "ycentroid", "aper_bkg_flux", "aper_bkg_flux_err"]
    for e in aperture_ee:
        cols += [f"aper{int(e)}_flux", f"aper{int(e)}_flux_err"]
    cols += ["aper_total_flux", "aper_total_flux_err", "is_extended", "isophotal_flux", "isophotal_flux_err"]
    return QTable({c: np.zeros(0) for c in cols})


__all__ = ["make_source_catalog", "adaptive_sigma", "curve_of_growth_apcorr", "growth_apcorr", "Table"]
