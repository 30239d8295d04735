"""Synthetic imaging with known truth for the stage-3 imaging steps (tweakreg, skymatch,
source_catalog): a JWST-style gwcs (``detector -> v2v3 -> world``) and star-field images.

Used by the tests and benchmarks until (and independently of) ``assign_wcs``; the WCS is built
the way the reference pipeline builds it: an affine detector -> V2V3 model (a stand-in for the
DISTORTION reference) followed by the standard JWST V2V3 -> sky rotation
(``RotationSequence3D([v2_ref, -v3_ref, roll_ref, dec_ref, -ra_ref], 'zyxyz')``).
"""
from __future__ import annotations

import numpy as np
from astropy import coordinates as coord
from astropy import units as u
from astropy.io import fits
from astropy.modeling import models
from scipy.special import erf

from runner.product import Product


def v23tosky(v2_ref, v3_ref, roll_ref, ra_ref, dec_ref):
    """The JWST V2V3 (arcsec) -> ICRS (deg) transform, as jwst ``pointing.v23tosky`` builds it."""
    angles = [v2_ref / 3600.0, -v3_ref / 3600.0, roll_ref, dec_ref, -ra_ref]
    from gwcs.geometry import CartesianToSpherical, SphericalToCartesian

    rot = models.RotationSequence3D(angles, axes_order="zyxyz")
    m = ((models.Scale(1 / 3600.0) & models.Scale(1 / 3600.0))
         | SphericalToCartesian(wrap_lon_at=180) | rot
         | CartesianToSpherical(wrap_lon_at=360))
    m.name = "v23tosky"
    return m


def make_gwcs(shape, *, ra_ref=80.0, dec_ref=-69.5, roll_ref=30.0, v2_ref=120.0, v3_ref=-500.0,
              pixel_scale=0.1, v3yangle=-0.5, vparity=-1, xref=None, yref=None):
    """A JWST-style gwcs: frames ``detector`` -> ``v2v3`` -> ``world``.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) of the image; sets the bounding box.
    ra_ref, dec_ref : float
        Sky position (deg) of the reference point (V2_REF, V3_REF).
    roll_ref : float
        Roll (deg) of V3 at the reference point.
    v2_ref, v3_ref : float
        Reference point in the telescope frame (arcsec).
    pixel_scale : float
        arcsec / pixel.
    v3yangle, vparity : float, int
        V3IdlYAngle (deg) and VPARITY of the aperture.
    xref, yref : float, optional
        0-based pixel of the reference point (default: image centre).

    Returns
    -------
    gwcs.WCS
    """
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gwcs_wcs

    ny, nx = shape
    xref = (nx - 1) / 2.0 if xref is None else xref
    yref = (ny - 1) / 2.0 if yref is None else yref
    a = np.deg2rad(v3yangle)
    s = pixel_scale
    # ideal (xi, eta) -> V2V3 as in the SIAF: v2 = v2ref + p*xi*cos(a) + eta*sin(a), ...
    matrix = s * np.array([[vparity * np.cos(a), np.sin(a)], [-vparity * np.sin(a), np.cos(a)]])
    affine = models.AffineTransformation2D(matrix=matrix, translation=[v2_ref, v3_ref])
    det2v23 = (models.Shift(-xref) & models.Shift(-yref)) | affine
    det2v23.name = "distortion"
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    v2v3 = cf.Frame2D(name="v2v3", axes_order=(0, 1), axes_names=("v2", "v3"),
                      unit=(u.arcsec, u.arcsec))
    world = cf.CelestialFrame(reference_frame=coord.ICRS(), name="world")
    w = gwcs_wcs.WCS([(detector, det2v23), (v2v3, v23tosky(v2_ref, v3_ref, roll_ref, ra_ref, dec_ref)),
                      (world, None)])
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return w


def pointing_header(*, ra_ref, dec_ref, roll_ref, v2_ref=120.0, v3_ref=-500.0, v3yangle=-0.5,
                    vparity=-1, shape=(128, 128)):
    """SCI-extension header cards holding the pointing keywords of :func:`make_gwcs`."""
    h = fits.Header()
    h["V2_REF"], h["V3_REF"], h["ROLL_REF"] = v2_ref, v3_ref, roll_ref
    h["RA_REF"], h["DEC_REF"] = ra_ref, dec_ref
    h["VPARITY"], h["V3I_YANG"] = vparity, v3yangle
    h["XREF_SCI"], h["YREF_SCI"] = (shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0
    h["BUNIT"] = "MJy/sr"
    return h


def gaussian_scene(shape, x, y, flux, sigma):
    """Pixel-integrated circular Gaussians.

    Parameters
    ----------
    shape : tuple
        (ny, nx).
    x, y : array_like
        0-based centres (pixels).
    flux : array_like
        Total flux of each source (any unit; the image is in the same unit per pixel).
    sigma : float
        Gaussian sigma (pixels).

    Returns
    -------
    numpy.ndarray (float64)
    """
    ny, nx = shape
    img = np.zeros(shape)
    half = int(np.ceil(6 * sigma)) + 1
    r2 = np.sqrt(2.0) * sigma
    for xc, yc, f in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux)):
        if not (np.isfinite(xc) and np.isfinite(yc)):
            continue
        ix, iy = int(round(xc)), int(round(yc))
        x0, x1 = max(ix - half, 0), min(ix + half + 1, nx)
        y0, y1 = max(iy - half, 0), min(iy + half + 1, ny)
        if x0 >= x1 or y0 >= y1:
            continue
        xe = np.arange(x0, x1 + 1) - 0.5
        ye = np.arange(y0, y1 + 1) - 0.5
        px = np.diff(0.5 * erf((xe - xc) / r2))
        py = np.diff(0.5 * erf((ye - yc) / r2))
        img[y0:y1, x0:x1] += f * np.outer(py, px)
    return img


def star_field(n, center, radius_arcsec, seed=1, flux_range=(2e-6, 2e-5)):
    """Random stars (RA, Dec in deg, flux) in a disk around ``center`` (ra, dec)."""
    rng = np.random.default_rng(seed)
    r = radius_arcsec * np.sqrt(rng.uniform(0, 1, n)) / 3600.0
    t = rng.uniform(0, 2 * np.pi, n)
    dec = center[1] + r * np.sin(t)
    ra = center[0] + r * np.cos(t) / np.cos(np.deg2rad(center[1]))
    flux = np.exp(rng.uniform(np.log(flux_range[0]), np.log(flux_range[1]), n))
    return ra, dec, flux


def make_image_product(true_wcs, ra, dec, flux, *, shape=(128, 128), sky=0.0, noise=0.0,
                       psf_sigma=1.2, seed=0, pixar_sr=None, header_wcs=None, filename="image_cal.fits",
                       pointing=None):
    """A `_cal`-like image Product of point sources rendered through ``true_wcs``.

    Parameters
    ----------
    true_wcs : gwcs.WCS
        The WCS used to place the sources.
    ra, dec : array_like
        Source positions (deg).
    flux : array_like
        Source total fluxes in MJy/sr * pixel (the image sums to this).
    shape : tuple
    sky : float
        Constant sky level (MJy/sr).
    noise : float
        Gaussian noise sigma per pixel (MJy/sr).
    psf_sigma : float
        Gaussian PSF sigma (pixels).
    header_wcs : gwcs.WCS, optional
        WCS stored in the product (e.g. with a pointing error); default ``true_wcs``.
    pointing : dict, optional
        Keywords for :func:`pointing_header` matching ``header_wcs``.

    Returns
    -------
    Product
    """
    x, y = true_wcs.invert(np.asarray(ra), np.asarray(dec), with_bounding_box=False)
    img = gaussian_scene(shape, x, y, flux, psf_sigma) + sky
    rng = np.random.default_rng(seed)
    err = np.full(shape, max(noise, 1e-6), np.float32)
    if noise:
        img = img + rng.normal(0, noise, shape)
    meta = fits.Header()
    meta["TELESCOP"], meta["INSTRUME"], meta["EXP_TYPE"] = "JWST", "NIRCAM", "NRC_IMAGE"
    meta["DETECTOR"], meta["FILTER"] = "NRCALONG", "F444W"
    pix = pixar_sr if pixar_sr is not None else (0.1 / 206264.806) ** 2
    meta["PIXAR_SR"] = pix
    meta["PIXAR_A2"] = pix * 206264.806 ** 2
    sci_hdr = pointing_header(**(pointing or {"ra_ref": 80.0, "dec_ref": -69.5, "roll_ref": 30.0}), shape=shape)
    arrays = {"SCI": img.astype(np.float32), "ERR": err, "DQ": np.zeros(shape, np.uint32),
              "VAR_POISSON": np.zeros(shape, np.float32), "VAR_RNOISE": err ** 2,
              "VAR_FLAT": np.zeros(shape, np.float32), "AREA": np.ones(shape, np.float32)}
    return Product("image", meta, arrays, ext_headers={"SCI": sci_hdr}, filename=filename,
                   wcs=header_wcs if header_wcs is not None else true_wcs)


def true_pixel_positions(true_wcs, ra, dec):
    """0-based pixel positions of sky positions through ``true_wcs``."""
    return true_wcs.invert(np.asarray(ra), np.asarray(dec))
