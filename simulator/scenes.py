"""Count-rate scenes (electrons per second per pixel) with known truth.

Every public function takes plain numbers / numpy arrays and returns ``(rate, truth)``:
``rate`` is a float64 image ``(ny, nx)`` or a per-integration cube ``(nints, ny, nx)`` in
e/s on the (sub)array, ``truth`` a JSON-serialisable dict describing exactly what was put in.

Conventions
-----------
* Pixel coordinates are 0-based ``(x, y)`` = (column, row) of the array as stored (DMS
  orientation), pixel centres at integer values; pixel ``(i, j)`` covers
  ``[x - 0.5, x + 0.5) x [y - 0.5, y + 0.5)``.
* Fluxes are in electrons per second (e/s) *before* the detector (the ramp simulator turns
  them into DN with the detector gain).
* Point-source images are integrated over pixels: the PSF is evaluated on a fine grid
  (``oversample`` x ``oversample`` sub-pixel samples at the sub-pixel centres), normalised to
  unit sum over its stamp, and block-summed into pixels. A source whose stamp lies wholly on
  the array therefore puts exactly its flux on the array; the truth reports
  ``flux_on_array_e_per_s`` as well (smaller when a stamp is cut by the edge).

PSF models
----------
``'airy'``: the Airy pattern of a filled circular aperture, ``I(v) = (2 J1(v) / v)**2`` with
``v = pi r / (lambda/D)``, ``lambda/D`` in pixels (FWHM = 1.029 lambda/D).
``'gaussian'``: a circular Gaussian of the given FWHM.
Both are truncated at ``radius`` pixels (default ``12 lambda/D``, resp. ``4 FWHM``).

Transit model
-------------
:func:`transit_light_curve`: a planet of radius ``rp_rs`` (stellar radii) on a circular orbit
(``a_rs``, inclination ``inc_deg``, period, mid-transit time ``t0``) in front of a star with the
quadratic limb-darkening law ``I(mu) = 1 - u1 (1 - mu) - u2 (1 - mu)**2``. The occulted flux is
the Mandel & Agol (2002) quantity, evaluated by numerical quadrature over the stellar disk
(the planet-covered arc of each annulus, integrated in radius with a cosine-substituted
Gauss-Legendre rule); relative accuracy better than 1e-6 of the stellar flux.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import erf, j1

__all__ = [
    "PSF",
    "render_point_sources",
    "star_field",
    "sky_to_pixel_offsets",
    "transit_light_curve",
    "occulted_fraction",
    "tso_image_cube",
    "slit_spectrum",
    "lrs_wavelength",
    "grism_tso",
    "coronagraph_scene",
    "coron_mask_transmission",
    "NRM_HOLES_M",
    "NRM_HOLE_FLAT_TO_FLAT_M",
    "nrm_baselines",
    "ami_scene",
]

ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
JWST_DIAMETER_M = 6.5


# ======================================================================================
# PSF and point sources
# ======================================================================================

@dataclass(frozen=True)
class PSF:
    """A pixel-integrated point-spread function.

    Attributes
    ----------
    kind : str
        'airy' or 'gaussian'.
    lam_over_d : float
        lambda/D in pixels (Airy).
    fwhm : float
        FWHM in pixels (Gaussian; for Airy it is derived: 1.029 lambda/D).
    oversample : int
        Sub-pixel samples per pixel along each axis.
    radius : float
        Stamp half-width in pixels (0: the default of the kind).
    """

    kind: str = "airy"
    lam_over_d: float = 2.0
    fwhm: float = 2.0
    oversample: int = 5
    radius: float = 0.0

    def __post_init__(self):
        if self.kind == "airy":
            object.__setattr__(self, "fwhm", float(1.029 * self.lam_over_d))

    @classmethod
    def for_instrument(cls, wavelength_um: float, pixel_scale_arcsec: float, **kw) -> "PSF":
        """Airy PSF of JWST's 6.5 m aperture at a wavelength, on a detector's pixel scale.

        Parameters
        ----------
        wavelength_um : float
            Wavelength in micron.
        pixel_scale_arcsec : float
            Pixel scale in arcsec/pixel.
        """
        lod = wavelength_um * 1e-6 / JWST_DIAMETER_M * ARCSEC_PER_RAD / pixel_scale_arcsec
        return cls(kind="airy", lam_over_d=float(lod), **kw)

    @property
    def half_width(self) -> int:
        """Stamp half-width in whole pixels."""
        r = self.radius
        if r <= 0:
            r = 12.0 * self.lam_over_d if self.kind == "airy" else 4.0 * self.fwhm
        return int(math.ceil(r))

    def profile(self, r: np.ndarray) -> np.ndarray:
        """Un-normalised radial profile at radius ``r`` (pixels)."""
        if self.kind == "airy":
            v = np.pi * np.asarray(r, dtype=float) / self.lam_over_d
            out = np.ones_like(v)
            nz = v > 1e-8
            out[nz] = (2.0 * j1(v[nz]) / v[nz]) ** 2
            return out
        if self.kind == "gaussian":
            s = self.fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
            return np.exp(-0.5 * (np.asarray(r, dtype=float) / s) ** 2)
        raise ValueError(f"unknown PSF kind {self.kind!r}")

    def stamp(self, x: float, y: float):
        """Pixel-integrated PSF centred at ``(x, y)`` (0-based pixel coordinates).

        Returns
        -------
        x0, y0 : int
            Array column / row of the stamp's first pixel.
        stamp : ndarray float64, (2h+1, 2h+1)
            Sums to 1.
        """
        h = self.half_width
        os_ = int(self.oversample)
        ix, iy = int(round(x)), int(round(y))
        # sub-pixel sample centres relative to the source
        sub = (np.arange(os_) + 0.5) / os_ - 0.5
        px = np.arange(-h, h + 1)
        fx = (px[:, None] + sub[None, :]).ravel() + (ix - x)
        fy = (px[:, None] + sub[None, :]).ravel() + (iy - y)
        r = np.hypot(fx[None, :], fy[:, None])
        fine = self.profile(r)
        fine /= fine.sum()
        n = 2 * h + 1
        st = fine.reshape(n, os_, n, os_).sum(axis=(1, 3))
        return ix - h, iy - h, st

    def encircled_energy(self, radius: float) -> float:
        """Fraction of the (stamp-normalised) PSF within ``radius`` pixels of its centre."""
        h = self.half_width
        os_ = 10
        c = (np.arange(-h * os_, (h + 1) * os_) + 0.5) / os_ - 0.5
        r = np.hypot(c[None, :], c[:, None])
        f = self.profile(r)
        inside = (np.abs(c[None, :]) <= h + 0.5) & (np.abs(c[:, None]) <= h + 0.5)
        f = f * inside
        return float(f[r <= radius].sum() / f.sum())

    def aperture_encircled_energy(self, radii, nphase: int = 8) -> np.ndarray:
        """Encircled energy as circular-aperture photometry measures it on rendered images.

        The pixel-integrated stamp of :meth:`stamp` (exactly what :func:`render_point_sources`
        adds to a scene) is summed within a circle of radius ``r`` centred on the source, each
        pixel weighted by the exact fraction of its area inside the circle (pixels taken as
        uniform: photutils ``aperture_photometry(method='exact')``). The result depends on
        where the source falls within its pixel; it is averaged over an ``nphase x nphase``
        regular grid of sub-pixel positions (offsets ``(i + 0.5) / nphase - 0.5`` pixel on
        each axis), the expectation for sources at random positions. The average is a
        periodic, smooth function of the position, so the grid converges fast (8 x 8: better
        than 1e-5 for the Airy PSFs of :meth:`for_instrument`).

        Parameters
        ----------
        radii : array_like
            Aperture radii in pixels (> 0).
        nphase : int
            Sub-pixel positions per axis.

        Returns
        -------
        numpy.ndarray of float64
            Fraction of the source's total flux (the stamp sums to 1) inside each radius,
            same shape as ``radii``. Radii beyond the stamp give 1.
        """
        from photutils.geometry import circular_overlap_grid

        radii = np.asarray(radii, dtype=float)
        flat = radii.ravel()
        if np.any(~np.isfinite(flat)) or np.any(flat <= 0):
            raise ValueError("aperture radii must be finite and > 0 pixels")
        offsets = (np.arange(int(nphase)) + 0.5) / int(nphase) - 0.5
        total = np.zeros(flat.size)
        for fy in offsets:
            for fx in offsets:
                x0, y0, st = self.stamp(float(fx), float(fy))
                n = st.shape[0]
                # stamp pixel (i, j) covers [i - 0.5, i + 0.5) about the source at (xs, ys)
                xs, ys = fx - x0, fy - y0
                for k, r in enumerate(flat):
                    frac = circular_overlap_grid(-xs - 0.5, n - xs - 0.5, -ys - 0.5, n - ys - 0.5,
                                                 n, n, float(r), 1, 1)
                    total[k] += float((frac * st).sum())
        return (total / offsets.size ** 2).reshape(radii.shape)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["half_width"] = self.half_width
        return d


def _add_stamp(image: np.ndarray, x0: int, y0: int, stamp: np.ndarray, scale: float) -> float:
    """Add ``scale * stamp`` at (x0, y0), clipped to the image; returns the flux that landed."""
    ny, nx = image.shape
    sy, sx = stamp.shape
    ya, yb = max(y0, 0), min(y0 + sy, ny)
    xa, xb = max(x0, 0), min(x0 + sx, nx)
    if ya >= yb or xa >= xb:
        return 0.0
    part = stamp[ya - y0:yb - y0, xa - x0:xb - x0] * scale
    image[ya:yb, xa:xb] += part
    return float(part.sum())


def render_point_sources(shape, x, y, flux, psf: PSF | None = None, sky: float = 0.0):
    """Image of point sources plus a flat sky.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    x, y : array_like
        0-based source positions in pixels.
    flux : array_like
        Source fluxes in e/s.
    psf : PSF, optional
        Default ``PSF()`` (Airy, lambda/D = 2 px).
    sky : float
        Flat background in e/s/pixel.

    Returns
    -------
    rate : ndarray float64, (ny, nx), e/s
    on_array : ndarray float64
        Flux of each source that landed on the array (e/s).
    """
    psf = psf or PSF()
    img = np.full(shape, float(sky), dtype=np.float64)
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    flux = np.atleast_1d(np.asarray(flux, float))
    landed = np.zeros(len(x))
    for k in range(len(x)):
        x0, y0, st = psf.stamp(x[k], y[k])
        landed[k] = _add_stamp(img, x0, y0, st, flux[k])
    return img, landed


def star_field(shape, n_stars: int, *, seed: int = 0, flux_range=(200.0, 20000.0),
               sky: float = 1.0, psf: PSF | None = None, margin: float = 8.0,
               offset=(0.0, 0.0), sources=None):
    """A field of point sources with a known list, on a flat sky.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the array.
    n_stars : int
        Number of stars drawn (ignored when ``sources`` is given).
    seed : int
        Random seed (positions uniform, fluxes log-uniform).
    flux_range : tuple of float
        Min / max flux in e/s.
    sky : float
        Flat sky in e/s/pixel.
    psf : PSF, optional
    margin : float
        Minimum distance of a drawn star from the array edge (pixels).
    offset : tuple of float
        ``(dx, dy)`` pixels added to every position (a dither moves the scene by minus the
        telescope offset).
    sources : array_like, optional
        ``(n, 3)`` rows of ``(x, y, flux)`` in the undithered frame; drawn when None.

    Returns
    -------
    rate : ndarray float64 (ny, nx), e/s
    truth : dict
        ``{'kind': 'star_field', 'sky_e_per_s', 'psf', 'offset_pix',
        'sources': [{'id', 'x', 'y', 'flux_e_per_s', 'flux_on_array_e_per_s'}]}``
        with ``x, y`` the positions on this array (offset included).
    """
    ny, nx = shape
    psf = psf or PSF()
    if sources is None:
        rng = np.random.default_rng(seed)
        xs = rng.uniform(margin, nx - 1 - margin, n_stars)
        ys = rng.uniform(margin, ny - 1 - margin, n_stars)
        lo, hi = flux_range
        fl = np.exp(rng.uniform(math.log(lo), math.log(hi), n_stars))
        sources = np.column_stack([xs, ys, fl])
    sources = np.asarray(sources, float).reshape(-1, 3)
    x = sources[:, 0] + offset[0]
    y = sources[:, 1] + offset[1]
    rate, landed = render_point_sources(shape, x, y, sources[:, 2], psf, sky)
    truth = {
        "kind": "star_field",
        "units": "e/s",
        "pixel_convention": "0-based (x=column, y=row), pixel centres at integers",
        "sky_e_per_s": float(sky),
        "psf": psf.to_dict(),
        "offset_pix": [float(offset[0]), float(offset[1])],
        "sources": [
            {"id": int(k), "x": float(x[k]), "y": float(y[k]),
             "flux_e_per_s": float(sources[k, 2]),
             "flux_on_array_e_per_s": float(landed[k])}
            for k in range(len(x))
        ],
    }
    return rate, truth


def sky_to_pixel_offsets(dx_arcsec, dy_arcsec, pixel_scale: float, pa_aper_deg: float):
    """Convert telescope offsets in the ideal (aperture) frame to detector pixel shifts.

    A telescope move of ``(dx, dy)`` arcsec along the aperture's ideal axes moves the scene
    by ``(-dx, -dy) / pixel_scale`` pixels (the detector axes are the ideal axes here).

    Returns
    -------
    (float, float)
        Pixel shift ``(sx, sy)`` to add to source positions.
    """
    return (-float(dx_arcsec) / pixel_scale, -float(dy_arcsec) / pixel_scale)


# ======================================================================================
# Transits
# ======================================================================================

_GL_N = 48
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_N)


def _ld_intensity(r, u1, u2):
    mu = np.sqrt(np.clip(1.0 - r * r, 0.0, 1.0))
    return 1.0 - u1 * (1.0 - mu) - u2 * (1.0 - mu) ** 2


def _integrate(a, b, func):
    """Integral of func(r) over [a, b] (arrays, broadcast) with r = a + (b-a)(1-cos t)/2."""
    t = (np.pi / 2.0) * (_GL_X + 1.0)                     # (N,) in (0, pi)
    a = np.asarray(a)[..., None]
    b = np.asarray(b)[..., None]
    r = a + (b - a) * 0.5 * (1.0 - np.cos(t))
    jac = (b - a) * 0.5 * np.sin(t) * (np.pi / 2.0)
    return np.sum(func(r) * jac * _GL_W, axis=-1)


def occulted_fraction(z, p, u1: float = 0.0, u2: float = 0.0):
    """Fraction of a limb-darkened star's flux hidden by an opaque disk.

    Parameters
    ----------
    z : array_like
        Projected centre-to-centre distance in stellar radii.
    p : array_like
        Planet radius in stellar radii (broadcast against ``z``).
    u1, u2 : float
        Quadratic limb-darkening coefficients.

    Returns
    -------
    ndarray
        Occulted fraction of the out-of-transit flux (0 out of transit).
    """
    z = np.abs(np.asarray(z, float))
    p = np.asarray(p, float)
    z, p = np.broadcast_arrays(z, p)
    total = np.pi * (1.0 - u1 / 3.0 - u2 / 6.0)
    out = np.zeros(z.shape)
    on = (z < 1.0 + p) & (p > 0)
    if not np.any(on):
        return out
    zz, pp = z[on], p[on]
    # region A: annuli wholly behind the planet, r in [0, max(0, p - z)] (clipped to 1)
    a_hi = np.clip(pp - zz, 0.0, 1.0)
    full = _integrate(np.zeros_like(a_hi), a_hi,
                      lambda r: 2.0 * np.pi * r * _ld_intensity(r, u1, u2))
    # region B: partially covered annuli, r in [|z - p|, min(1, z + p)]
    b_lo = np.minimum(np.abs(zz - pp), 1.0)
    b_hi = np.minimum(zz + pp, 1.0)
    zb, pb = zz[:, None], pp[:, None]

    def partial(r):
        with np.errstate(divide="ignore", invalid="ignore"):
            c = (r * r + zb * zb - pb * pb) / (2.0 * r * zb)
        kappa = np.arccos(np.clip(np.nan_to_num(c, nan=1.0), -1.0, 1.0))
        return 2.0 * kappa * r * _ld_intensity(r, u1, u2)

    part = np.where(b_hi > b_lo, _integrate(b_lo, b_hi, partial), 0.0)
    out[on] = (full + part) / total
    return out


def transit_light_curve(t, *, t0: float, period: float, rp_rs, a_rs: float,
                        inc_deg: float = 90.0, u1: float = 0.0, u2: float = 0.0):
    """Relative flux of a transited star (1 out of transit).

    Parameters
    ----------
    t : array_like
        Times (same unit as ``t0`` and ``period``, e.g. MJD days).
    t0 : float
        Mid-transit time.
    period : float
        Orbital period.
    rp_rs : float or array_like
        Planet-to-star radius ratio (broadcast against ``t``).
    a_rs : float
        Semi-major axis in stellar radii (circular orbit).
    inc_deg : float
        Orbital inclination (90 = central transit).
    u1, u2 : float
        Quadratic limb-darkening coefficients.

    Returns
    -------
    ndarray
        ``1 - occulted_fraction(z(t), rp_rs, u1, u2)``.
    """
    t = np.asarray(t, float)
    phase = 2.0 * np.pi * (t - t0) / period
    inc = np.radians(inc_deg)
    xs = a_rs * np.sin(phase)
    ys = a_rs * np.cos(inc) * np.cos(phase)
    z = np.hypot(xs, ys)
    z = np.where(np.cos(phase) > 0, z, 1e6)        # secondary eclipse side: no occultation
    return 1.0 - occulted_fraction(z, rp_rs, u1, u2)


def _transit_dict(t0, period, rp_rs, a_rs, inc_deg, u1, u2):
    b = a_rs * math.cos(math.radians(inc_deg))
    return {"model": "quadratic limb-darkened transit (Mandel & Agol 2002, numerical quadrature)",
            "t0_mjd": float(t0), "period_days": float(period), "rp_rs": rp_rs,
            "a_rs": float(a_rs), "inc_deg": float(inc_deg), "impact_parameter": float(b),
            "u1": float(u1), "u2": float(u2)}


def tso_image_cube(shape, int_mid_mjd, *, star_flux: float = 2.0e5, x: float | None = None,
                   y: float | None = None, psf: PSF | None = None, sky: float = 2.0,
                   t0: float | None = None, period: float = 2.5, rp_rs: float = 0.1,
                   a_rs: float = 8.0, inc_deg: float = 89.0, u1: float = 0.3, u2: float = 0.2):
    """TSO imaging: one star whose flux follows a transit, one image per integration.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    int_mid_mjd : array_like
        Mid-times of the integrations (MJD).
    star_flux : float
        Out-of-transit flux (e/s).
    x, y : float, optional
        Star position (default: array centre).
    psf : PSF, optional
    sky : float
        Flat sky (e/s/pixel).
    t0 : float, optional
        Mid-transit (default: the middle of ``int_mid_mjd``).
    period, rp_rs, a_rs, inc_deg, u1, u2 : float
        See :func:`transit_light_curve` (period in days).

    Returns
    -------
    rate : ndarray float64, (nints, ny, nx), e/s
    truth : dict
        Transit parameters, ``int_mid_mjd``, ``relative_flux`` per integration, star
        position and flux, ``transit_depth`` (the deepest relative flux deficit sampled) and
        ``central_depth`` (the deficit at ``t0``).
    """
    ny, nx = shape
    t = np.asarray(int_mid_mjd, float)
    if t0 is None:
        t0 = float(0.5 * (t[0] + t[-1]))
    x = (nx - 1) / 2.0 if x is None else x
    y = (ny - 1) / 2.0 if y is None else y
    psf = psf or PSF()
    lc = transit_light_curve(t, t0=t0, period=period, rp_rs=rp_rs, a_rs=a_rs,
                             inc_deg=inc_deg, u1=u1, u2=u2)
    img, landed = render_point_sources(shape, [x], [y], [1.0], psf, 0.0)
    rate = sky + star_flux * lc[:, None, None] * img[None]
    central = 1.0 - float(transit_light_curve([t0], t0=t0, period=period, rp_rs=rp_rs,
                                              a_rs=a_rs, inc_deg=inc_deg, u1=u1, u2=u2)[0])
    truth = {
        "kind": "tso_image",
        "units": "e/s",
        "star": {"x": float(x), "y": float(y), "flux_e_per_s": float(star_flux),
                 "flux_on_array_e_per_s": float(star_flux * landed[0])},
        "sky_e_per_s": float(sky),
        "psf": psf.to_dict(),
        "transit": _transit_dict(t0, period, float(rp_rs), a_rs, inc_deg, u1, u2),
        "int_mid_mjd": t.tolist(),
        "relative_flux": lc.tolist(),
        "transit_depth": float(1.0 - lc.min()),
        "central_depth": central,
    }
    return rate, truth


# ======================================================================================
# Spectra
# ======================================================================================

def _pixel_gauss(centres, sigma, n):
    """Gaussian of unit integral, centre ``centres`` (pix), integrated over pixels 0..n-1."""
    edges = np.arange(n + 1) - 0.5
    cdf = 0.5 * (1.0 + erf((edges[None, :] - np.atleast_1d(centres)[:, None])
                           / (math.sqrt(2.0) * sigma)))
    return np.diff(cdf, axis=1)


def lrs_wavelength(y, coeffs):
    """Wavelength (micron) of detector row ``y``: ``sum_k coeffs[k] * (y - coeffs_ref)**k``.

    Parameters
    ----------
    y : array_like
        Row (0-based, may be fractional).
    coeffs : dict
        ``{'y_ref': float, 'c': [c0, c1, c2, ...]}``; micron, micron/pixel, ...

    Returns
    -------
    ndarray
    """
    dy = np.asarray(y, float) - coeffs["y_ref"]
    return np.polynomial.polynomial.polyval(dy, coeffs["c"])


def _invert_monotonic(func, target, lo, hi):
    grid = np.linspace(lo, hi, 20001)
    vals = func(grid)
    order = np.argsort(vals)
    return float(np.interp(target, vals[order], grid[order]))


def slit_spectrum(shape, *, x_slit: float | None = None, slit_halflength: float = 24.0,
                  nod_offset: float = 0.0, spatial_sigma: float = 1.2,
                  wave_coeffs: dict | None = None, continuum: float = 400.0,
                  continuum_index: float = -1.5, lines=None, sky: float = 5.0,
                  row_range=None):
    """Long-slit spectrum dispersed along y (MIRI LRS fixed slit), slit along x.

    The rate is ``S(y) * P(x - x_src) + sky * [|x - x_slit| <= slit_halflength]`` where

    * ``lambda(y)`` is the polynomial :func:`lrs_wavelength` (``wave_coeffs``), decreasing
      with y as for LRS;
    * ``S(y)`` (e/s per row, summed over x) is the continuum
      ``continuum * (lambda / 7.5 um)**continuum_index`` plus Gaussian emission lines, each
      integrated over the row (``flux`` e/s summed over rows, ``sigma`` in micron);
    * ``P`` is a pixel-integrated Gaussian (``spatial_sigma`` px), unit sum, centred at
      ``x_src = x_slit + nod_offset``.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    x_slit : float, optional
        Column of the slit centre (default: array centre).
    slit_halflength : float
        Half-length of the slit (pixels) along x; the sky fills it.
    nod_offset : float
        Offset of the source along the slit (pixels), the nod position.
    spatial_sigma : float
        Gaussian sigma of the spatial profile (pixels).
    wave_coeffs : dict, optional
        ``{'y_ref', 'c'}``; default maps the array's rows onto ~5-14 micron.
    continuum : float
        Continuum level at 7.5 micron (e/s per row).
    continuum_index : float
        Power-law index of the continuum in wavelength.
    lines : list of dict, optional
        ``[{'wavelength_um', 'flux_e_per_s', 'sigma_um'}]``; default three lines.
    sky : float
        Sky (e/s/pixel) inside the slit.
    row_range : tuple of int, optional
        ``(first, last)`` rows (inclusive) the spectrum and the sky cover; outside them the
        rate is 0 and ``wavelength_um`` is NaN. Default: every row.

    Returns
    -------
    rate : ndarray float64 (ny, nx)
    truth : dict
        ``wave_coeffs``, ``wavelength_um`` per row, ``spectrum_e_per_s`` per row (source only,
        summed over x), ``continuum_e_per_s`` per row, ``lines`` (with ``y_center``),
        ``x_source``, ``nod_offset_pix``, ``spatial_sigma_pix``, ``sky_e_per_s``, slit extent.
    """
    ny, nx = shape
    x_slit = (nx - 1) / 2.0 if x_slit is None else float(x_slit)
    if wave_coeffs is None:
        # ~14 um at row 0, ~5 um at the last row; c2 > 0 flattens the long-wavelength end
        span = max(ny - 1, 1)
        c1 = -12.0 / span
        c2 = 6.0 / span ** 2
        wave_coeffs = {"y_ref": span / 2.0, "c": [9.0, c1, c2]}
    rows = np.arange(ny)
    lo, hi = (0, ny - 1) if row_range is None else (int(row_range[0]), int(row_range[1]))
    lit = (rows >= lo) & (rows <= hi)
    wav = lrs_wavelength(rows, wave_coeffs)
    cont = np.where(lit, continuum * (np.abs(wav) / 7.5) ** continuum_index, 0.0)
    if lines is None:
        lines = [{"wavelength_um": 6.985, "flux_e_per_s": 3000.0, "sigma_um": 0.05},   # [Ar II]
                 {"wavelength_um": 8.991, "flux_e_per_s": 2000.0, "sigma_um": 0.06},   # [Ar III]
                 {"wavelength_um": 10.511, "flux_e_per_s": 4000.0, "sigma_um": 0.07}]  # [S IV]
    spec = cont.copy()
    lines_out = []
    dldy = np.gradient(wav)
    for ln in lines:
        lam = ln["wavelength_um"]
        if not (min(wav[lo], wav[hi]) < lam < max(wav[lo], wav[hi])):
            continue
        yc = _invert_monotonic(lambda yy: lrs_wavelength(yy, wave_coeffs), lam, lo, hi)
        sig_y = ln["sigma_um"] / abs(np.interp(yc, rows, dldy))
        prof = _pixel_gauss([yc], sig_y, ny)[0] * lit
        spec += ln["flux_e_per_s"] * prof
        lines_out.append({**ln, "y_center": yc, "sigma_rows": float(sig_y),
                          "flux_on_array_e_per_s": float(ln["flux_e_per_s"] * prof.sum())})
    x_src = x_slit + nod_offset
    prof_x = _pixel_gauss([x_src], spatial_sigma, nx)[0]
    cols = np.arange(nx)
    in_slit = np.abs(cols - x_slit) <= slit_halflength
    rate = spec[:, None] * prof_x[None, :] + sky * (in_slit[None, :] & lit[:, None])
    wav = np.where(lit, wav, np.nan)
    truth = {
        "kind": "slit_spectrum",
        "units": "e/s",
        "dispersion_axis": 2,
        "wavelength_model": "lambda(y) = sum_k c[k] (y - y_ref)**k, micron, y = 0-based row",
        "wave_coeffs": {"y_ref": float(wave_coeffs["y_ref"]),
                        "c": [float(c) for c in wave_coeffs["c"]]},
        "row_range": [lo, hi],
        "wavelength_um": [None if not np.isfinite(w) else float(w) for w in wav],
        "spectrum_e_per_s": (spec * prof_x.sum()).tolist(),
        "continuum_e_per_s": cont.tolist(),
        "continuum_model": f"{continuum} * (lambda / 7.5 um)**{continuum_index}",
        "lines": lines_out,
        "x_slit": x_slit,
        "slit_halflength_pix": float(slit_halflength),
        "x_source": float(x_src),
        "nod_offset_pix": float(nod_offset),
        "spatial_sigma_pix": float(spatial_sigma),
        "sky_e_per_s": float(sky),
    }
    return rate, truth


def grism_tso(shape, int_mid_mjd, *, y_trace: float | None = None, trace_sigma: float = 1.1,
              wave_coeffs=(2.35, 0.001), x_offset: int = 0, star_peak: float = 3000.0,
              sky: float = 1.0, t0: float | None = None, period: float = 3.0,
              rp_rs: float = 0.12, feature_amp: float = 0.08, feature_center_um: float = 3.3,
              feature_width_um: float = 0.12, a_rs: float = 9.0, inc_deg: float = 89.5,
              u1: float = 0.2, u2: float = 0.15):
    """NIRCam grism time series: horizontal trace, transit depth varying with wavelength.

    ``lambda(x) = wave_coeffs[0] + wave_coeffs[1] * (x + x_offset)`` micron (x the 0-based
    column of the array, ``x_offset`` its full-frame column offset), dispersion along +x.
    The stellar spectrum per column is ``star_peak * T(lambda) * (lambda / 3.2)**-2`` e/s
    (summed over rows), with the F322W2 band-pass ``T = 0.25 (1 + tanh((lambda - 2.42)/0.03))
    (1 - tanh((lambda - 4.01)/0.03))``. The spatial profile is a pixel-integrated Gaussian
    (``trace_sigma``) centred on ``y_trace``. The planet radius is
    ``rp(lambda) = rp_rs * (1 + feature_amp * exp(-0.5 ((lambda - feature_center) / width)**2))``
    and each column follows :func:`transit_light_curve` with its own ``rp``.

    Returns
    -------
    rate : ndarray float64, (nints, ny, nx), e/s
    truth : dict
        ``wavelength_um`` and ``rp_rs``, ``depth`` (central deficit) per column,
        ``stellar_spectrum_e_per_s`` per column, ``relative_flux`` per integration and
        column (rows: integrations) only when small, ``white_light_relative_flux`` per
        integration (flux-weighted over columns), transit parameters, ``int_mid_mjd``.
    """
    ny, nx = shape
    t = np.asarray(int_mid_mjd, float)
    if t0 is None:
        t0 = float(0.5 * (t[0] + t[-1]))
    y_trace = (ny - 1) / 2.0 + 2.0 if y_trace is None else float(y_trace)
    cols = np.arange(nx)
    wav = wave_coeffs[0] + wave_coeffs[1] * (cols + x_offset)
    band = 0.25 * (1 + np.tanh((wav - 2.42) / 0.03)) * (1 - np.tanh((wav - 4.01) / 0.03))
    spec = star_peak * band * (wav / 3.2) ** -2
    rp = rp_rs * (1.0 + feature_amp * np.exp(-0.5 * ((wav - feature_center_um)
                                                     / feature_width_um) ** 2))
    # light curves on a grid of radius ratios, interpolated per column (error < 1e-7)
    rp_grid = np.linspace(rp.min(), rp.max() + 1e-9, 33)
    kw = dict(t0=t0, period=period, a_rs=a_rs, inc_deg=inc_deg, u1=u1, u2=u2)
    lc_grid = transit_light_curve(t[:, None], rp_rs=rp_grid[None, :], **kw)   # (nints, 33)
    idx = np.clip(np.searchsorted(rp_grid, rp) - 1, 0, len(rp_grid) - 2)
    w = (rp - rp_grid[idx]) / (rp_grid[idx + 1] - rp_grid[idx])
    lc = lc_grid[:, idx] * (1 - w) + lc_grid[:, idx + 1] * w                   # (nints, nx)
    prof_y = _pixel_gauss([y_trace], trace_sigma, ny)[0]
    rate = sky + (lc * spec[None, :])[:, None, :] * prof_y[None, :, None]
    depth = 1.0 - transit_light_curve(np.full(nx, t0), rp_rs=rp, **kw)
    white = (lc * spec[None, :]).sum(axis=1) / spec.sum()
    truth = {
        "kind": "grism_tso",
        "units": "e/s",
        "dispersion_axis": 1,
        "wavelength_model": "lambda(x) = c0 + c1 * (x + x_offset), micron, x = 0-based column",
        "wave_coeffs": [float(c) for c in wave_coeffs],
        "x_offset": int(x_offset),
        "y_trace": y_trace,
        "trace_sigma_pix": float(trace_sigma),
        "sky_e_per_s": float(sky),
        "wavelength_um": wav.tolist(),
        "stellar_spectrum_e_per_s": (spec * prof_y.sum()).tolist(),
        "rp_rs_per_column": rp.tolist(),
        "depth_per_column": depth.tolist(),
        "rp_model": {"rp_rs": rp_rs, "feature_amp": feature_amp,
                     "feature_center_um": feature_center_um,
                     "feature_width_um": feature_width_um},
        "transit": _transit_dict(t0, period, "per column", a_rs, inc_deg, u1, u2),
        "int_mid_mjd": t.tolist(),
        "white_light_relative_flux": white.tolist(),
    }
    return rate, truth


# ======================================================================================
# Coronagraphy
# ======================================================================================

def coron_mask_transmission(r, iwa_pix: float):
    """Intensity transmission of a round occulting mask at radius ``r`` (pixels).

    ``T(r) = 1 - exp(-ln 2 * (r / iwa)**2)``: 0 at the centre, 0.5 at the inner working
    angle ``iwa`` (pixels), -> 1 far out. A documented stand-in for the MASK335R profile.
    """
    r = np.asarray(r, float)
    return 1.0 - np.exp(-math.log(2.0) * (r / iwa_pix) ** 2)


def coronagraph_scene(shape, *, psf: PSF, star_flux: float = 1.0e6,
                      center=None, iwa_pix: float = 9.3, companion_sep_pix: float = 20.0,
                      companion_pa_deg: float = 60.0, contrast: float = 2.0e-3,
                      pixel_scale: float = 0.063, sky: float = 1.0, reference: bool = False,
                      reference_flux_ratio: float = 1.12, reference_offset=(0.0, 0.0)):
    """A star behind a round coronagraphic mask, with a faint companion (or a reference star).

    The image is ``T(r) * [F_star PSF(x - xc) + F_comp PSF(x - xcomp)] + sky`` with ``T``
    :func:`coron_mask_transmission` about the mask centre. The companion sits at
    ``companion_sep_pix`` from the star at position angle ``companion_pa_deg`` measured from
    +y towards -x (north up, east left on the detector). ``reference=True`` gives the PSF
    reference star instead: no companion, flux ``reference_flux_ratio * star_flux``, at the
    mask centre plus ``reference_offset`` pixels.

    Returns
    -------
    rate : ndarray float64 (ny, nx)
    truth : dict
        ``mask`` (centre, iwa, model), ``star`` (x, y, flux, transmitted flux), and for the
        science scene ``companion`` (x, y, sep_pix, sep_arcsec, pa_deg, contrast, flux,
        transmission, transmitted flux); for the reference ``reference_flux_ratio``.
    """
    ny, nx = shape
    if center is None:
        center = ((nx - 1) / 2.0, (ny - 1) / 2.0)
    xc, yc = float(center[0]), float(center[1])
    yy, xx = np.mgrid[0:ny, 0:nx]
    trans = coron_mask_transmission(np.hypot(xx - xc, yy - yc), iwa_pix)
    mask_truth = {"center_x": xc, "center_y": yc, "iwa_pix": float(iwa_pix),
                  "model": "T(r) = 1 - exp(-ln2 (r/iwa)^2), applied per pixel"}
    if reference:
        fs = star_flux * reference_flux_ratio
        sx, sy = xc + reference_offset[0], yc + reference_offset[1]
        img, _ = render_point_sources(shape, [sx], [sy], [fs], psf, 0.0)
        rate = trans * img + sky
        truth = {"kind": "coronagraph_reference", "units": "e/s", "mask": mask_truth,
                 "psf": psf.to_dict(), "sky_e_per_s": float(sky),
                 "star": {"x": sx, "y": sy, "flux_e_per_s": float(fs),
                          "transmitted_e_per_s": float((trans * img).sum())},
                 "reference_flux_ratio": float(reference_flux_ratio)}
        return rate, truth
    pa = math.radians(companion_pa_deg)
    cx = xc - companion_sep_pix * math.sin(pa)
    cy = yc + companion_sep_pix * math.cos(pa)
    fc = star_flux * contrast
    img_s, _ = render_point_sources(shape, [xc], [yc], [star_flux], psf, 0.0)
    img_c, landed = render_point_sources(shape, [cx], [cy], [fc], psf, 0.0)
    rate = trans * (img_s + img_c) + sky
    truth = {
        "kind": "coronagraph_science", "units": "e/s", "mask": mask_truth,
        "psf": psf.to_dict(), "sky_e_per_s": float(sky),
        "star": {"x": xc, "y": yc, "flux_e_per_s": float(star_flux),
                 "transmitted_e_per_s": float((trans * img_s).sum())},
        "companion": {"x": cx, "y": cy, "sep_pix": float(companion_sep_pix),
                      "sep_arcsec": float(companion_sep_pix * pixel_scale),
                      "pa_deg": float(companion_pa_deg),
                      "pa_convention": "from +y (north) towards -x (east)",
                      "contrast": float(contrast), "flux_e_per_s": float(fc),
                      "flux_on_array_e_per_s": float(landed[0]),
                      "transmission_at_center": float(coron_mask_transmission(
                          math.hypot(cx - xc, cy - yc), iwa_pix)),
                      "transmitted_e_per_s": float((trans * img_c).sum())},
    }
    return rate, truth


# ======================================================================================
# Aperture masking interferometry
# ======================================================================================

#: NIRISS non-redundant mask hole centres projected on the primary (m), (x, y)
#: (Sivaramakrishnan et al. 2023, PASP 135, 015003; jwst ``ami`` mask definitions).
NRM_HOLES_M = np.array([
    [0.00000, -2.64000],
    [-2.28631, 0.00000],
    [2.28631, -1.32000],
    [-2.28631, 1.32000],
    [-1.14315, 1.98000],
    [2.28631, 1.32000],
    [1.14315, 1.98000],
])
#: Flat-to-flat size of the hexagonal holes projected on the primary (m).
NRM_HOLE_FLAT_TO_FLAT_M = 0.82


def nrm_baselines():
    """The 21 baseline vectors (m) ``holes[j] - holes[i]`` for ``i < j``.

    Returns
    -------
    pairs : list of (int, int)
    baselines : ndarray (21, 2)
    """
    pairs = [(i, j) for i in range(7) for j in range(i + 1, 7)]
    b = np.array([NRM_HOLES_M[j] - NRM_HOLES_M[i] for i, j in pairs])
    return pairs, b


def _nrm_pupil(n: int, dx: float):
    """Boolean pupil of the 7 hexagonal holes on an n x n grid of spacing dx (m)."""
    c = (np.arange(n) - n // 2) * dx
    X, Y = np.meshgrid(c, c)
    a = NRM_HOLE_FLAT_TO_FLAT_M / 2.0
    pupil = np.zeros((n, n), dtype=bool)
    s30, c30 = 0.5, math.sqrt(3.0) / 2.0
    for hx, hy in NRM_HOLES_M:
        u, v = X - hx, Y - hy
        inside = (np.abs(v) <= a) & (np.abs(c30 * u + s30 * v) <= a) & (np.abs(-c30 * u + s30 * v) <= a)
        pupil |= inside
    return pupil, X, Y


def ami_scene(shape, *, wavelength_um: float = 4.8, pixel_scale: float = 0.0656,
              star_flux: float = 5.0e5, center=None, binary: bool = True,
              separation_mas: float = 150.0, pa_deg: float = 45.0, flux_ratio: float = 0.1,
              oversample: int = 3, nfft: int = 1024, sky: float = 0.5):
    """NIRISS AMI interferogram of a single star or a binary (monochromatic, F480M).

    The image-plane intensity is ``|FFT(pupil * exp(2 pi i (x.theta)/lambda))|**2`` for each
    point source (the tilt places it at its sub-pixel position), computed on a grid
    ``oversample`` times finer than the detector and block-summed into pixels. The pupil is
    the 7 hexagonal holes of :data:`NRM_HOLES_M` (flat-to-flat
    :data:`NRM_HOLE_FLAT_TO_FLAT_M`). Each source's PSF is normalised to unit sum over the
    FFT field (``nfft / oversample`` pixels square), then cut to the array.

    The companion sits at ``separation_mas`` from the primary at position angle ``pa_deg``
    from +y (north) towards -x (east) on the detector; it has ``flux_ratio`` times the
    primary's flux. The pupil x/y axes are parallel to the detector x/y axes.

    Returns
    -------
    rate : ndarray float64 (ny, nx), e/s
    truth : dict
        ``primary`` (x, y, flux), ``companion`` (x, y, flux, separation_mas, pa_deg,
        flux_ratio) when ``binary``, holes, wavelength, pixel scale.
    """
    ny, nx = shape
    if center is None:
        center = ((nx - 1) / 2.0, (ny - 1) / 2.0)
    lam = wavelength_um * 1e-6
    pix_rad = pixel_scale / ARCSEC_PER_RAD
    # FFT sampling: lambda / (nfft * dx) = pix_rad / oversample
    dx = lam * oversample / (nfft * pix_rad)
    pupil, X, Y = _nrm_pupil(nfft, dx)
    pupil = pupil.astype(np.complex128)

    sources = [("primary", float(center[0]), float(center[1]), float(star_flux))]
    if binary:
        sep_pix = separation_mas / 1000.0 / pixel_scale
        pa = math.radians(pa_deg)
        sources.append(("companion", center[0] - sep_pix * math.sin(pa),
                        center[1] + sep_pix * math.cos(pa), float(star_flux * flux_ratio)))
    fine_n = nfft
    npix = fine_n // oversample
    img = np.full(shape, float(sky))
    truth_src = {}
    for name, sx, sy, f in sources:
        # put the source at (sx, sy): integer part by placement, fraction by a pupil tilt
        ix, iy = int(round(sx)), int(round(sy))
        fx, fy = sx - ix, sy - iy                           # pixels
        # fine-grid centre sample of pixel (ix, iy) is the FFT origin (index fine_n//2)
        # after fftshift; a tilt moves the image by (fx, fy) * oversample fine samples
        phase = np.exp(2j * np.pi * (X * fx * pix_rad + Y * fy * pix_rad) / lam)
        field = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(pupil * phase)))
        inten = np.abs(field) ** 2
        inten /= inten.sum()
        # fine grid index fine_n//2 corresponds to the centre of pixel ix (requires odd
        # oversample): block k covers fine indices [c - h + k*os, ...)
        h = oversample // 2
        start = fine_n // 2 - h - (npix // 2) * oversample
        block = inten[start:start + npix * oversample, start:start + npix * oversample]
        pix = block.reshape(npix, oversample, npix, oversample).sum(axis=(1, 3))
        x0, y0 = ix - npix // 2, iy - npix // 2
        landed = _add_stamp(img, x0, y0, pix, f)
        truth_src[name] = {"x": float(sx), "y": float(sy), "flux_e_per_s": f,
                           "flux_on_array_e_per_s": landed}
    truth = {
        "kind": "ami_binary" if binary else "ami_single",
        "units": "e/s",
        "wavelength_um": float(wavelength_um),
        "pixel_scale_arcsec": float(pixel_scale),
        "holes_m": NRM_HOLES_M.tolist(),
        "hole_shape": "hexagon",
        "hole_flat_to_flat_m": NRM_HOLE_FLAT_TO_FLAT_M,
        "oversample": int(oversample),
        "sky_e_per_s": float(sky),
        "primary": truth_src["primary"],
    }
    if binary:
        truth["companion"] = {**truth_src["companion"], "separation_mas": float(separation_mas),
                              "pa_deg": float(pa_deg),
                              "pa_convention": "from +y (north) towards -x (east)",
                              "flux_ratio": float(flux_ratio)}
    return img, truth
