"""Stage-2 imaging truth and the reference files that describe it: DISTORTION, FLAT, PHOTOM, AREA,
and the stage-3 APCORR (aperture corrections of the simulated point-spread functions).

Everything a calwebb_image2 run needs to turn a simulated rate image (DN/s) back into the
scene that was simulated: where each pixel looks on the sky, how each pixel responds, and how
electrons per second convert to janskys.

Geometry (DISTORTION, AREA; :func:`distortion_model`)
-----------------------------------------------------
The detector -> telescope (V2, V3) transform of a detector, in full-frame 0-based DMS pixel
coordinates ``(x, y)`` (what a CRDS DISTORTION reference holds; jwst prepends
``Shift(SUBSTRT1 - 1) & Shift(SUBSTRT2 - 1)`` for subarrays):

1. ``u = (x - x0) / N``, ``v = (y - y0) / N`` with ``(x0, y0)`` the full-frame centre
   (NIR ``(1023.5, 1023.5)``, ``N = 1024``; MIRI ``(515.5, 511.5)``, ``N = 512``);
2. a small cubic distortion ``u' = P_x(u, v)``, ``v' = P_y(u, v)`` (:data:`DISTORTION_COEFFS`,
   below one pixel at the corners of a near-IR detector);
3. ideal coordinates ``X = N u' s``, ``Y = N v' s`` (arcsec; ``s`` the pixel scale of
   :data:`simulator.headers.PIXEL_SCALES`: NIRCam SW 0.031, LW 0.063, NIRISS 0.0656,
   MIRI 0.11 arcsec/pixel); the detector axes are the ideal axes (as the simulator's scenes
   assume);
4. the SIAF ideal -> V2V3 rotation with ``(V2, V3, V3IdlYAng, VIdlParity)`` of
   :data:`simulator.headers.INSTRUMENT_APERTURES` (the detector's full-frame aperture)::

       V2 = V2_0 + VIdlParity * X * cos(yang) + Y * sin(yang)
       V3 = V3_0 - VIdlParity * X * sin(yang) + Y * cos(yang)

The model carries an inverse (a fitted degree-6 polynomial in the same normalised
coordinates, accurate to < 1e-7 pixel over the detector).

A pixel's sky position for a pointing (``V2_REF, V3_REF, ROLL_REF, RA_REF, DEC_REF``) is the
standard JWST attitude rotation of (V2, V3), treated as longitude / latitude on the unit sphere
(:func:`attitude_matrix`): ``M = Rz(RA_REF) Ry(-DEC_REF) Rx(-ROLL_REF) Ry(V3_REF) Rz(-V2_REF)``
(active right-handed rotations). It sends (V2_REF, V3_REF) to (RA_REF, DEC_REF), the +V3
direction there to position angle ROLL_REF (east of north) and +V2 to ROLL_REF + 90 deg.
This module implements it with numpy, independently of the pipeline's astropy
``RotationSequence3D``; the tests compare the two.

For a subarray exposure, the header's (V2_REF, V3_REF) must be the V2V3 of the reference pixel
(XREF_SCI, YREF_SCI) under this distortion (:func:`reference_point_v2v3`), as SIAF apertures
are; otherwise the reference point and the pixel grid disagree.

The AREA reference is the pixel area relative to ``s**2`` from the distortion's Jacobian
(:func:`pixel_area_map`; the cos(V3) factor of the V2V3 sphere, < 1e-5, is neglected).

Pixel response (FLAT; :func:`flat_response`)
--------------------------------------------
The simulated ramps divide electrons by the per-pixel gain ``g`` of
:func:`simulator.detectors.detector_properties` (``sim_gain``). If the scene is also
multiplied by the quantum-efficiency response :func:`qe_response` before the ramps are
simulated, the rate image is ``rate_e * qe / g`` (DN/s) and the FLAT is::

    flat = qe * nominal_gain / g,     so that rate / flat = rate_e / nominal_gain

``qe`` = smooth pattern (a few per cent, slightly filter dependent) x pixel-to-pixel noise
(0.8 % rms, per detector). Reference pixels have flat 1. About 2e-4 of the pixels are
"unmeasured": NaN in the FLAT reference with DQ ``NO_FLAT_FIELD | DO_NOT_USE`` (the truth is
still defined there). FLAT ERR is ``FLAT_ERR_FRACTION * flat``.

Flux calibration (PHOTOM; :func:`photmjsr`, :func:`rate_e_to_jy`)
-----------------------------------------------------------------
A flat-spectrum (f_nu) source of 1 Jy gives ``e_per_s_per_jy = 1e-26 A eta w / h`` electrons
per second with ``A`` = 25.4 m^2, ``eta`` the instrument throughput (:data:`THROUGHPUT`,
times a pupil factor :data:`PUPIL_TRANSMISSION`), ``w`` the filter's fractional bandwidth
(:func:`filter_band`) and ``h`` Planck's constant. With a reference gain ``G`` (2 e/DN near-IR,
4 e/DN MIRI) and the nominal pixel solid angle ``Omega`` (sr) of the filter's channel::

    PHOTMJSR = G / (e_per_s_per_jy * 1e6 * Omega)              [MJy/sr per DN/s]
    rate_e_to_jy(detector) = PHOTMJSR * 1e6 * PIXAR_SR(detector) / nominal_gain(detector)

so that a source of flux ``F_e`` (e/s) has ``F_e * rate_e_to_jy`` Jy, and the sum of its
calibrated pixels (MJy/sr) times ``PIXAR_SR * 1e6`` gives the same janskys.

Reference files
---------------
==========  =====================================================  ==================
REFTYPE     content                                                datamodel
==========  =====================================================  ==================
DISTORTION  ASDF: ``model`` (x, y) full frame -> (V2, V3) arcsec,   DistortionModel
            ``meta`` (reftype, instrument, exposure, units, ...)
FLAT        SCI (float32), ERR, DQ (uint32), DQ_DEF; per            FlatModel
            (detector, subarray, filter, pupil)
PHOTOM      PHOTOM table: filter, pupil (MIRI: subarray),           NrcImgPhotomModel,
            photmjsr, uncertainty; PIXAR_SR / PIXAR_A2 in the       NisImgPhotomModel,
            primary header; per detector                            MirImgPhotomModel
AREA        SCI (float32, relative pixel area); PIXAR_SR/A2;       PixelAreaModel
            per (detector, subarray)
APCORR      APCORR table: filter, pupil (MIRI: subarray),           NrcImgApcorrModel,
            eefraction, radius (pixels), apcorr, skyin, skyout     NisImgApcorrModel,
            (pixels); per detector, rows for the imaging filters   MirImgApcorrModel
==========  =====================================================  ==================

Aperture corrections (APCORR; :func:`apcorr_rows`)
--------------------------------------------------
The simulator's point-spread function is the Airy pattern of :class:`simulator.scenes.PSF`
(``PSF.for_instrument(wavelength, pixel scale)``, the wavelength of the mode that uses the
filter, else the filter's pivot wavelength), pixel-integrated exactly as the scenes render it.
``EE(r)`` is the fraction of a source's total flux that circular-aperture photometry
(photutils ``method='exact'``) finds within ``r`` pixels of the true position, averaged over
sub-pixel positions (:meth:`simulator.scenes.PSF.aperture_encircled_energy`). Each filter has

* one row per encircled energy of :data:`APCORR_EEFRACTIONS` (10 .. 90 %): the radius where
  ``EE(r)`` equals it (``EE`` is computed on a 0.05-pixel grid of radii and interpolated with
  a monotone cubic: better than 1e-4 in ``EE``);
* one row per whole radius 1, 2, .. ``floor(skyin)`` pixels (as the CRDS NIRCam files have),
  with its ``EE`` as ``eefraction``, unless ``round(100 * EE)`` is one of the 10 .. 90 % of
  the rows above (the reference pipeline selects rows by that number and needs exactly one;
  whole-radius rows may share a number among themselves, as in the CRDS files);
* the local-background annulus ``skyin = max(8, round(4 lambda/D))``, ``skyout = max(13,
  round(6.5 lambda/D))`` pixels (8 and 13 as in the CRDS NIRCam files for lambda/D <~ 2 px);
* ``apcorr = 1 / (EE(r) - pi r**2 B)`` with ``B = (EE(skyout) - EE(skyin)) / (pi (skyout**2 -
  skyin**2))`` the PSF's mean surface brightness in the annulus: the factor that turns an
  aperture sum less ``pi r**2`` times the annulus background into the total flux, which is
  how the reference pipeline applies it (the CRDS NIRCam files' corrections likewise exceed
  ``1 / eefraction`` by about this term).

The values describe the PSF sampled on the detector's pixels (a ``_cal`` image, or an i2d at
pixel_scale_ratio 1 before the drizzle's own smoothing; see :mod:`steps.source_catalog.catalog`).
MIRI tables repeat each filter's rows for every imaging subarray (:data:`MIRI_IMAGING_SUBARRAYS`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from pathlib import Path

import numpy as np
from astropy.io import fits

from .detectors import DQ, Subarray, detector_properties, get_detector, get_subarray
from .headers import INSTRUMENT_APERTURES, PIXEL_SCALES
from .references import USEAFTER, common_cards, header_from_cards

__all__ = [
    "DISTORTION_COEFFS", "THROUGHPUT", "PUPIL_TRANSMISSION", "FLAT_ERR_FRACTION",
    "IMAGING_EXP_TYPES", "PHOTOM_FILTERS", "STAGE2_REFTYPES",
    "detector_aperture", "pixel_scale", "frame_reference_pixel", "distortion_model",
    "reference_point_v2v3", "attitude_matrix", "v2v3_to_sky", "sky_to_v2v3",
    "detector_to_world", "world_to_detector", "pixel_area_map", "pixel_area_sr",
    "qe_response", "flat_response", "flat_arrays", "filter_band", "photmjsr",
    "rate_e_to_jy", "photom_rows",
    "write_distortion", "write_flat", "write_photom", "write_area", "stage2_reference_spec",
    "APCORR_EEFRACTIONS", "MIRI_IMAGING_SUBARRAYS", "imaging_psf", "apcorr_sky_annulus",
    "apcorr_rows", "apcorr_table", "apcorr_reference_spec", "write_apcorr",
]

GENERATOR_VERSION = 1
STAGE2_REFTYPES = ("distortion", "flat", "photom", "area")
ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
PLANCK_H = 6.62607015e-34          # J s
JWST_AREA_M2 = 25.4
FLAT_ERR_FRACTION = 0.002
NAN_FLAT_FRACTION = 2e-4

#: cubic distortion coefficients (normalised coordinates u, v in [-1, 1]) per instrument:
#: ``{'x': {term: coeff}, 'y': {...}}`` with Polynomial2D term names ``c<i>_<j>`` (u**i v**j)
DISTORTION_COEFFS = {
    "NIRCAM": {"x": {"c1_0": 1.0, "c2_0": 2.0e-4, "c1_1": -1.5e-4, "c0_2": 1.0e-4,
                     "c3_0": 1.5e-4, "c1_2": 1.0e-4},
               "y": {"c0_1": 1.0, "c0_2": -1.2e-4, "c1_1": 2.0e-4, "c2_0": 0.8e-4,
                     "c0_3": 1.5e-4, "c2_1": 1.0e-4}},
    "NIRISS": {"x": {"c1_0": 1.0, "c2_0": -1.5e-4, "c1_1": 1.0e-4, "c0_2": 0.5e-4,
                     "c3_0": 2.0e-4, "c1_2": 0.5e-4},
               "y": {"c0_1": 1.0, "c0_2": 1.0e-4, "c1_1": -0.8e-4, "c2_0": 1.2e-4,
                     "c0_3": 1.0e-4, "c2_1": 1.5e-4}},
    "MIRI": {"x": {"c1_0": 1.0, "c2_0": 4.0e-4, "c1_1": 2.0e-4, "c0_2": -2.0e-4,
                   "c3_0": 3.0e-4, "c1_2": 2.0e-4},
             "y": {"c0_1": 1.0, "c0_2": 3.0e-4, "c1_1": -2.5e-4, "c2_0": 1.5e-4,
                   "c0_3": 2.0e-4, "c2_1": -1.0e-4}},
}
_DEFAULT_COEFFS = DISTORTION_COEFFS["NIRISS"]

#: instrument throughput (optics x filter peak x detector QE), for PHOTMJSR
THROUGHPUT = {"NIRCAM": 0.40, "NIRISS": 0.30, "MIRI": 0.25, "FGS": 0.30, "NIRSPEC": 0.30}
#: transmission of non-clear pupil elements relative to CLEAR
PUPIL_TRANSMISSION = {"NRM": 0.15, "MASKRND": 0.90, "MASKBAR": 0.90, "CLEARP": 0.85}
#: reference gain (e/DN) folded into PHOTMJSR per instrument
_REFERENCE_GAIN = {"MIRI": 4.0}

#: imaging EXP_TYPEs a DISTORTION applies to (P_EXP_TY of the references)
IMAGING_EXP_TYPES = {
    "NIRCAM": "NRC_IMAGE|NRC_TSIMAGE|NRC_CORON|NRC_TACQ|NRC_TACONFIRM|NRC_FOCUS|",
    "NIRISS": "NIS_IMAGE|NIS_AMI|NIS_TACQ|NIS_TACONFIRM|NIS_FOCUS|",
    "MIRI": "MIR_IMAGE|MIR_TACQ|MIR_4QPM|MIR_LYOT|MIR_CORONCAL|",
    "FGS": "FGS_IMAGE|FGS_FOCUS|",
    "NIRSPEC": "NRS_IMAGE|",
}
_APCORR_MODEL = {"NIRCAM": "NrcImgApcorrModel", "NIRISS": "NisImgApcorrModel",
                 "MIRI": "MirImgApcorrModel", "FGS": "FgsImgApcorrModel"}
#: encircled energies (fractions) of the APCORR rows
APCORR_EEFRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: MIRI imaging subarrays: the MIRI APCORR table has rows per (filter, subarray)
MIRI_IMAGING_SUBARRAYS = ("FULL", "BRIGHTSKY", "SUB256", "SUB128", "SUB64")
#: sub-pixel positions per axis averaged in the APCORR encircled energies
APCORR_NPHASE = 8
#: radius step (pixels) of the encircled-energy curve the APCORR radii are inverted from
APCORR_RADIUS_STEP = 0.05
_PHOTOM_MODEL = {"NIRCAM": "NrcImgPhotomModel", "NIRISS": "NisImgPhotomModel",
                 "MIRI": "MirImgPhotomModel", "FGS": "FgsImgPhotomModel"}

_NRC_SW = ("F070W", "F090W", "F115W", "F140M", "F150W", "F150W2", "F162M", "F164N", "F182M",
           "F187N", "F200W", "F210M", "F212N")
_NRC_LW = ("F250M", "F277W", "F300M", "F322W2", "F323N", "F335M", "F356W", "F360M", "F405N",
           "F410M", "F430M", "F444W", "F460M", "F466N", "F470N", "F480M")
#: (filter, pupil or MIRI subarray) rows of the PHOTOM references per instrument / channel
PHOTOM_FILTERS = {
    "NIRCAM_SW": [(f, p) for f in _NRC_SW for p in ("CLEAR", "MASKRND", "MASKBAR")],
    "NIRCAM_LW": [(f, p) for f in _NRC_LW for p in ("CLEAR", "MASKRND", "MASKBAR")],
    "NIRISS": [(f, p) for f in ("F090W", "F115W", "F140M", "F150W", "F158M", "F200W", "F277W",
                                "F356W", "F380M", "F430M", "F444W", "F480M", "CLEAR")
               for p in ("CLEAR", "CLEARP", "NRM")],
    "MIRI": [(f, "GENERIC") for f in ("F560W", "F770W", "F1000W", "F1130W", "F1280W", "F1500W",
                                      "F1800W", "F2100W", "F2550W", "F1065C", "F1140C",
                                      "F1550C", "F2300C")],
}


# ======================================================================================
# geometry
# ======================================================================================

def _detector(detector):
    return get_detector(detector)


def _subarray(detector, subarray) -> Subarray:
    if isinstance(subarray, Subarray):
        return subarray
    return get_subarray(_detector(detector).name, subarray or "FULL")


def detector_aperture(detector: str):
    """``(V2, V3, V3IdlYAng, VIdlParity)`` (arcsec, arcsec, deg, +-1) of a detector's full frame.

    The detector's full-frame centre (:func:`frame_reference_pixel`) maps to (V2, V3).
    """
    name = _detector(detector).name
    return INSTRUMENT_APERTURES.get(name, (0.0, -500.0, 0.0, -1))


def pixel_scale(detector: str) -> float:
    """Nominal pixel scale (arcsec/pixel)."""
    return PIXEL_SCALES.get(_detector(detector).name, 0.1)


def frame_reference_pixel(detector: str):
    """0-based full-frame ``(x0, y0, N)``: centre of the frame and the normalisation length."""
    ny, nx = _detector(detector).full_shape
    return (nx - 1) / 2.0, (ny - 1) / 2.0, float(min(nx, ny) // 2)


def _poly(coeffs, degree=3):
    from astropy.modeling.models import Polynomial2D

    p = Polynomial2D(degree)
    for name, value in coeffs.items():
        setattr(p, name, value)
    return p


@functools.lru_cache(maxsize=16)
def _distortion_model_cached(name: str):
    from astropy.modeling import fitting
    from astropy.modeling.models import (AffineTransformation2D, Mapping, Polynomial2D,
                                         Scale, Shift)

    det = _detector(name)
    x0, y0, n = frame_reference_pixel(name)
    s = pixel_scale(name)
    v2, v3, yang, vpar = detector_aperture(name)
    coeffs = DISTORTION_COEFFS.get(det.instrument, _DEFAULT_COEFFS)
    px, py = _poly(coeffs["x"]), _poly(coeffs["y"])
    a = math.radians(yang)
    matrix = np.array([[vpar * math.cos(a), math.sin(a)],
                       [-vpar * math.sin(a), math.cos(a)]])
    idl2v = AffineTransformation2D(matrix=matrix, translation=[v2, v3], name="idl2v2v3")
    to_norm = (Shift(-x0) & Shift(-y0)) | (Scale(1.0 / n) & Scale(1.0 / n))
    poly = Mapping((0, 1, 0, 1)) | (px & py)
    to_idl = Scale(n * s) & Scale(n * s)
    forward = to_norm | poly | to_idl | idl2v

    # inverse: exact affine parts, fitted polynomial for the cubic distortion
    g = np.linspace(-1.15, 1.15, 71)
    u, v = np.meshgrid(g, g)
    up, vp = px(u, v), py(u, v)
    fitter = fitting.LinearLSQFitter()
    inv_x = fitter(Polynomial2D(6), up, vp, u)
    inv_y = fitter(Polynomial2D(6), up, vp, v)
    inverse = (idl2v.inverse | (Scale(1.0 / (n * s)) & Scale(1.0 / (n * s)))
               | Mapping((0, 1, 0, 1)) | (inv_x & inv_y)
               | (Scale(n) & Scale(n)) | (Shift(x0) & Shift(y0)))
    forward.inverse = inverse
    forward.name = f"{det.name.lower()}_distortion"
    forward.inputs = ("x", "y")
    forward.outputs = ("v2", "v3")
    return forward


def distortion_model(detector: str):
    """Full-frame detector -> V2V3 transform of a detector (see the module docstring).

    Parameters
    ----------
    detector : str
        DETECTOR keyword value.

    Returns
    -------
    astropy.modeling.Model
        Inputs ``(x, y)``: 0-based full-frame pixels; outputs ``(v2, v3)`` in arcsec. Has an
        inverse (< 1e-7 pixel). A fresh copy on every call.
    """
    return _distortion_model_cached(_detector(detector).name).copy()


def reference_point_v2v3(detector: str, subarray, xref_sci: float, yref_sci: float):
    """(V2_REF, V3_REF) in arcsec of a subarray's 1-based reference pixel (XREF_SCI, YREF_SCI).

    The values a header must carry for the pointing and the pixel grid to agree.
    """
    sub = _subarray(detector, subarray)
    model = _distortion_model_cached(_detector(detector).name)
    v2, v3 = model(xref_sci - 1.0 + sub.xstart - 1.0, yref_sci - 1.0 + sub.ystart - 1.0)
    return float(v2), float(v3)


def _rx(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def attitude_matrix(v2_ref: float, v3_ref: float, roll_ref: float, ra_ref: float,
                    dec_ref: float) -> np.ndarray:
    """3x3 matrix taking V2V3 unit vectors to ICRS unit vectors.

    Parameters
    ----------
    v2_ref, v3_ref : float
        Reference point in the telescope frame, arcsec.
    roll_ref : float
        Position angle of +V3 at the reference point, deg east of north.
    ra_ref, dec_ref : float
        Sky position of the reference point, deg.

    Returns
    -------
    ndarray (3, 3)
        ``Rz(ra) Ry(-dec) Rx(-roll) Ry(v3) Rz(-v2)`` (active rotations).
    """
    d = math.radians
    return (_rz(d(ra_ref)) @ _ry(-d(dec_ref)) @ _rx(-d(roll_ref))
            @ _ry(d(v3_ref / 3600.0)) @ _rz(-d(v2_ref / 3600.0)))


def _unit(lon_deg, lat_deg):
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _angles(vec):
    lon = np.degrees(np.arctan2(vec[1], vec[0]))
    lat = np.degrees(np.arctan2(vec[2], np.hypot(vec[0], vec[1])))
    return lon, lat


def _pointing(header):
    return tuple(float(header[k]) for k in ("V2_REF", "V3_REF", "ROLL_REF", "RA_REF", "DEC_REF"))


def v2v3_to_sky(v2, v3, header):
    """RA, Dec (deg) of V2, V3 (arcsec) for the pointing keywords in ``header``.

    ``header``: mapping with V2_REF, V3_REF, ROLL_REF, RA_REF, DEC_REF.
    """
    m = attitude_matrix(*_pointing(header))
    vec = _unit(np.asarray(v2, float) / 3600.0, np.asarray(v3, float) / 3600.0)
    ra, dec = _angles(np.tensordot(m, vec, axes=1))
    return np.mod(ra, 360.0), dec


def sky_to_v2v3(ra, dec, header):
    """V2, V3 (arcsec) of RA, Dec (deg) for the pointing in ``header`` (inverse of :func:`v2v3_to_sky`)."""
    m = attitude_matrix(*_pointing(header))
    vec = _unit(np.asarray(ra, float), np.asarray(dec, float))
    lon, lat = _angles(np.tensordot(m.T, vec, axes=1))
    lon = np.where(lon > 180.0, lon - 360.0, lon)
    return lon * 3600.0, lat * 3600.0


def detector_to_world(detector: str, subarray, header, x, y):
    """Sky position of 0-based subarray pixels, through the DISTORTION model and the pointing.

    Parameters
    ----------
    detector : str
    subarray : Subarray or str
    header : mapping
        V2_REF, V3_REF (arcsec), ROLL_REF, RA_REF, DEC_REF (deg): the SCI-header keywords.
    x, y : array_like
        0-based pixel coordinates on the subarray.

    Returns
    -------
    ra, dec : ndarray, deg
    """
    sub = _subarray(detector, subarray)
    model = _distortion_model_cached(_detector(detector).name)
    v2, v3 = model(np.asarray(x, float) + sub.xstart - 1, np.asarray(y, float) + sub.ystart - 1)
    return v2v3_to_sky(v2, v3, header)


def world_to_detector(detector: str, subarray, header, ra, dec):
    """0-based subarray pixel coordinates ``(x, y)`` of sky positions (deg); inverse of
    :func:`detector_to_world` (fitted inverse plus two Newton steps: < 1e-9 pixel)."""
    sub = _subarray(detector, subarray)
    model = _distortion_model_cached(_detector(detector).name)
    v2, v3 = sky_to_v2v3(ra, dec, header)
    x, y = model.inverse(v2, v3)
    x, y = np.asarray(x, float), np.asarray(y, float)
    h = 0.01
    for _ in range(2):
        f2, f3 = model(x, y)
        a2, a3 = model(x + h, y)
        b2, b3 = model(x, y + h)
        j11, j21 = (a2 - f2) / h, (a3 - f3) / h
        j12, j22 = (b2 - f2) / h, (b3 - f3) / h
        det = j11 * j22 - j12 * j21
        r2, r3 = v2 - f2, v3 - f3
        x = x + (j22 * r2 - j12 * r3) / det
        y = y + (-j21 * r2 + j11 * r3) / det
    return x - (sub.xstart - 1), y - (sub.ystart - 1)


def pixel_area_map(detector: str, subarray="FULL") -> np.ndarray:
    """Pixel area relative to the nominal ``pixel_scale**2`` (the AREA reference's SCI).

    The Jacobian determinant of the distortion (the ideal -> V2V3 rotation and the scale
    preserve area, so it is that of the cubic polynomial in normalised coordinates),
    evaluated analytically at the pixel centres.

    Returns
    -------
    ndarray float32, the subarray's shape
    """
    det = _detector(detector)
    sub = _subarray(det.name, subarray)
    x0, y0, n = frame_reference_pixel(det.name)
    ys, xs = np.mgrid[sub.ystart - 1:sub.ystart - 1 + sub.ysize,
                      sub.xstart - 1:sub.xstart - 1 + sub.xsize].astype(float)
    u, v = (xs - x0) / n, (ys - y0) / n
    coeffs = DISTORTION_COEFFS.get(det.instrument, _DEFAULT_COEFFS)

    def partials(terms):
        du = np.zeros_like(u)
        dv = np.zeros_like(u)
        for name, c in terms.items():
            i, j = (int(k) for k in name[1:].split("_"))
            if i:
                du += c * i * u ** (i - 1) * v ** j
            if j:
                dv += c * j * u ** i * v ** (j - 1)
        return du, dv

    xu, xv = partials(coeffs["x"])
    yu, yv = partials(coeffs["y"])
    return np.abs(xu * yv - xv * yu).astype(np.float32)


def pixel_area_sr(detector: str):
    """Nominal pixel solid angle: ``(PIXAR_SR, PIXAR_A2)`` in sr and arcsec^2."""
    s = pixel_scale(detector)
    return (s / ARCSEC_PER_RAD) ** 2, s * s


# ======================================================================================
# pixel response
# ======================================================================================

def _rng(*parts):
    text = "|".join(str(p) for p in parts).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text).digest()[:8], "little"))


def filter_band(filter_name: str):
    """``(pivot wavelength in micron, fractional bandwidth)`` of a filter from its name.

    ``F200W`` -> (2.00, 0.25); digits / 100 give the wavelength; the last letter the width:
    W 0.25 (W2 0.5; MIRI W 0.2), M 0.10, N 0.01, C 0.05. Unknown names (CLEAR, P750L, ...)
    give (2.0, 0.25) for near-IR-looking names and the digits where present.
    """
    name = str(filter_name or "").upper().strip()
    digits = "".join(ch for ch in name[1:] if ch.isdigit())
    lam = int(digits) / 100.0 if digits else 2.0
    if name.endswith("W2"):
        width = 0.5
    elif name.endswith("W"):
        width = 0.2 if lam > 5.0 else 0.25
    elif name.endswith("M"):
        width = 0.10
    elif name.endswith("N"):
        width = 0.01
    elif name.endswith("C"):
        width = 0.05
    else:
        width = 0.25
    return lam, width


@functools.lru_cache(maxsize=4)
def _pixel_qe_noise(name: str) -> np.ndarray:
    shape = _detector(name).full_shape
    noise = 1.0 + 0.008 * _rng("qe-pixel", name).standard_normal(shape, dtype=np.float32)
    noise.setflags(write=False)
    return noise


def qe_response(detector: str, subarray="FULL", filter_name: str = "CLEAR") -> np.ndarray:
    """Relative quantum efficiency of each pixel (mean ~1): smooth pattern x pixel noise.

    The simulator multiplies the scene (e/s) by this before simulating ramps.

    Returns
    -------
    ndarray float32, the subarray's shape (1 on reference pixels)
    """
    det = _detector(detector)
    sub = _subarray(det.name, subarray)
    lam, _ = filter_band(filter_name)
    x0, y0, n = frame_reference_pixel(det.name)
    ys, xs = np.mgrid[sub.ystart - 1:sub.ystart - 1 + sub.ysize,
                      sub.xstart - 1:sub.xstart - 1 + sub.xsize].astype(np.float32)
    u, v = (xs - x0) / n, (ys - y0) / n
    amp = 0.03 * (1.0 + 0.3 * math.sin(lam))
    smooth = 1.0 + amp * (0.6 * u - 0.4 * v * v + 0.5 * u * v + 0.3 * np.cos(2.1 * u + 1.3 * v))
    qe = smooth * sub.cut(_pixel_qe_noise(det.name))
    qe[sub.cut(det.reference_pixel_mask())] = 1.0
    return qe.astype(np.float32)


def flat_response(detector: str, subarray="FULL", filter_name: str = "CLEAR", *,
                  version: int = 1) -> np.ndarray:
    """The true flat: response of the DN/s rate image relative to a detector at nominal gain.

    ``qe_response * nominal_gain / sim_gain`` (1 on reference pixels), so that
    ``rate / flat = rate_e / nominal_gain`` when the scene was multiplied by
    :func:`qe_response` and the ramps simulated with detector property ``version``.

    Returns
    -------
    ndarray float32, the subarray's shape
    """
    det = _detector(detector)
    sub = _subarray(det.name, subarray)
    props = detector_properties(det.name, version=version)
    gain = sub.cut(props.sim_gain).astype(np.float64)
    flat = qe_response(det.name, sub, filter_name) * (props.nominal_gain / gain)
    flat[sub.cut(det.reference_pixel_mask())] = 1.0
    return flat.astype(np.float32)


def flat_arrays(detector: str, subarray="FULL", filter_name: str = "CLEAR") -> dict:
    """SCI, ERR, DQ of the FLAT reference (SCI = truth, NaN where 'unmeasured')."""
    det = _detector(detector)
    sub = _subarray(det.name, subarray)
    sci = flat_response(det.name, sub, filter_name)
    u = sub.cut(_rng("flat-nan", det.name).random(det.full_shape, dtype=np.float32))
    bad = (u < NAN_FLAT_FRACTION) & ~sub.cut(det.reference_pixel_mask())
    sci[bad] = np.nan
    err = (np.float32(FLAT_ERR_FRACTION) * sci).astype(np.float32)
    err[bad] = 0.0
    dq = np.zeros(sub.shape, np.uint32)
    dq[bad] = (1 << 18) | DQ["DO_NOT_USE"]
    return {"SCI": sci, "ERR": err, "DQ": dq}


# ======================================================================================
# flux calibration
# ======================================================================================

def _channel_scale(instrument: str, filter_name: str) -> float:
    instrument = instrument.upper()
    if instrument == "NIRCAM":
        lam, _ = filter_band(filter_name)
        return 0.031 if lam < 2.4 else 0.063
    return {"NIRISS": 0.0656, "MIRI": 0.11}.get(instrument, 0.1)


def photmjsr(instrument: str, filter_name: str, pupil: str | None = None) -> float:
    """PHOTMJSR (MJy/sr per DN/s at the instrument's reference gain); see the module docstring."""
    instrument = instrument.upper()
    _, width = filter_band(filter_name)
    eta = THROUGHPUT.get(instrument, 0.3) * PUPIL_TRANSMISSION.get(str(pupil or "").upper(), 1.0)
    e_per_jy = 1e-26 * JWST_AREA_M2 * eta * width / PLANCK_H
    omega = (_channel_scale(instrument, filter_name) / ARCSEC_PER_RAD) ** 2
    gain = _REFERENCE_GAIN.get(instrument, 2.0)
    return float(gain / (e_per_jy * 1e6 * omega))


def rate_e_to_jy(instrument: str, detector: str, filter_name: str, pupil: str | None = None) -> float:
    """Jy per (e/s) of a source seen by ``detector``: ``PHOTMJSR * 1e6 * PIXAR_SR / nominal_gain``."""
    pixar_sr, _ = pixel_area_sr(detector)
    g = detector_properties(_detector(detector).name).nominal_gain
    return float(photmjsr(instrument, filter_name, pupil) * 1e6 * pixar_sr / g)


def _photom_key(detector: str) -> str:
    det = _detector(detector)
    if det.instrument == "NIRCAM":
        return "NIRCAM_LW" if det.name.endswith("LONG") else "NIRCAM_SW"
    return det.instrument


def photom_rows(detector: str) -> list:
    """``(filter, pupil_or_subarray, photmjsr, uncertainty)`` rows of a detector's PHOTOM."""
    det = _detector(detector)
    rows = []
    for filt, second in PHOTOM_FILTERS.get(_photom_key(det.name), []):
        pupil = None if det.instrument == "MIRI" else second
        value = photmjsr(det.instrument, filt, pupil)
        rows.append((filt, second, value, 0.01 * value))
    return rows


# ======================================================================================
# aperture corrections
# ======================================================================================

def imaging_psf(detector: str, filter_name: str, pupil: str | None = None):
    """The simulated PSF (:class:`simulator.scenes.PSF`) of a detector and filter.

    The wavelength is that of the simulator mode (:data:`simulator.modes.MODES`) observing with
    this detector, filter and pupil, exactly as the mode renders its scenes; otherwise the
    filter's pivot wavelength (:func:`filter_band`). Pixel scale:
    :data:`simulator.headers.PIXEL_SCALES`.
    """
    from .modes import MODES
    from .scenes import PSF

    det = _detector(detector)
    lam = None
    for mode in MODES.values():
        if (mode["detector"] == det.name and mode["filter"] == filter_name
                and (mode["pupil"] or None) == (pupil or None)):
            lam = float(mode["wavelength_um"])
            break
    if lam is None:
        lam = filter_band(filter_name)[0]
    return PSF.for_instrument(lam, pixel_scale(det.name))


def apcorr_sky_annulus(psf) -> tuple:
    """``(skyin, skyout)`` in pixels of the APCORR local-background annulus for a PSF.

    ``max(8, round(4 lambda/D))`` and ``max(13, round(6.5 lambda/D))`` (``psf.lam_over_d`` in
    pixels; Gaussian PSFs use ``FWHM / 1.029``).
    """
    lod = psf.lam_over_d if psf.kind == "airy" else psf.fwhm / 1.029
    return float(max(8, round(4.0 * lod))), float(max(13, round(6.5 * lod)))


@functools.lru_cache(maxsize=32)
def _ee_curve(psf):
    """(radii, EE) on a :data:`APCORR_RADIUS_STEP` grid out to ``skyout + 1`` pixels."""
    _, skyout = apcorr_sky_annulus(psf)
    radii = np.arange(1, int(math.ceil((skyout + 1.0) / APCORR_RADIUS_STEP)) + 1) * APCORR_RADIUS_STEP
    ee = psf.aperture_encircled_energy(radii, nphase=APCORR_NPHASE)
    return radii, ee


def apcorr_rows(psf) -> list:
    """APCORR rows ``(eefraction, radius, apcorr, skyin, skyout)`` of one PSF (see the module
    docstring), sorted by radius; radii and annulus in pixels."""
    from scipy.interpolate import PchipInterpolator

    skyin, skyout = apcorr_sky_annulus(psf)
    radii, ee = _ee_curve(psf)
    # EE rises monotonically; monotone cubic interpolation both ways (error < 1e-4 in EE)
    keep = np.concatenate([[True], np.diff(ee) > 0])
    r_of_ee = PchipInterpolator(ee[keep], radii[keep])
    ee_of_r = PchipInterpolator(radii, ee)
    surface = float(ee_of_r(skyout) - ee_of_r(skyin)) / (math.pi * (skyout ** 2 - skyin ** 2))
    rows = []
    for frac in APCORR_EEFRACTIONS:
        r = float(r_of_ee(frac))
        rows.append((float(frac), r, float(ee_of_r(r))))
    reserved = {int(round(100 * f)) for f in APCORR_EEFRACTIONS}
    for r in range(1, int(math.floor(skyin)) + 1):
        e = float(ee_of_r(r))
        if int(round(100 * e)) not in reserved:     # the 10 .. 90 % rows must stay unique
            rows.append((e, float(r), e))
    out = [(frac, r, float(1.0 / (e - math.pi * r * r * surface)), skyin, skyout)
           for frac, r, e in rows]
    return sorted(out, key=lambda row: row[1])


def _apcorr_entries(detector: str, filters) -> list:
    """Sorted unique (filter, pupil) pairs (MIRI: pupil None)."""
    det = _detector(detector)
    out = set()
    for filt, pupil in filters:
        if not filt:
            continue
        out.add((str(filt).upper(), None if det.instrument == "MIRI" else str(pupil or "CLEAR").upper()))
    return sorted(out, key=lambda e: (e[0], e[1] or ""))


def apcorr_table(detector: str, filters) -> np.ndarray:
    """The APCORR binary table of a detector: rows for each (filter, pupil) in ``filters``.

    Columns filter, pupil (MIRI: subarray, one block of rows per
    :data:`MIRI_IMAGING_SUBARRAYS`), eefraction, radius (pixels), apcorr, skyin, skyout
    (pixels), in the dtype of the stdatamodels ``*ImgApcorrModel`` schemas.
    """
    det = _detector(detector)
    miri = det.instrument == "MIRI"
    second = ("subarray", "S17") if miri else ("pupil", "S15")
    dtype = [("filter", "S12"), second, ("eefraction", "<f4"), ("radius", "<f4"),
             ("apcorr", "<f4"), ("skyin", "<f4"), ("skyout", "<f4")]
    rows = []
    for filt, pupil in _apcorr_entries(det.name, filters):
        table = apcorr_rows(imaging_psf(det.name, filt, pupil))
        for key in (MIRI_IMAGING_SUBARRAYS if miri else (pupil,)):
            rows += [(filt, key) + row for row in table]
    return np.array(rows, dtype=dtype)


# ======================================================================================
# writing the references
# ======================================================================================

def stage2_reference_spec(reftype: str, detector: str, subarray=None, filter_name=None,
                          pupil=None) -> str:
    """16-hex-digit hash of what a stage-2 reference's content depends on (SIMSPEC)."""
    det = _detector(detector)
    rt = reftype.lower()
    sub = _subarray(det.name, subarray) if subarray is not None and rt in ("flat", "area") else None
    parts = [GENERATOR_VERSION, rt, det.name, sub, filter_name if rt == "flat" else None,
             pupil if rt == "flat" else None]
    if rt in ("distortion", "area"):
        parts.append(sorted(DISTORTION_COEFFS.get(det.instrument, _DEFAULT_COEFFS)["x"].items()))
        parts.append(detector_aperture(det.name))
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def _nircam_cards(det):
    if det.instrument != "NIRCAM":
        return []
    return [("MODULE", "A" if det.name.startswith("NRCA") else "B", "NIRCam module"),
            ("CHANNEL", "LONG" if det.name.endswith("LONG") else "SHORT", "NIRCam channel")]


def _subarray_cards(sub):
    return [("SUBARRAY", sub.name, "subarray used"),
            ("SUBSTRT1", sub.xstart, "starting pixel in axis 1 direction"),
            ("SUBSTRT2", sub.ystart, "starting pixel in axis 2 direction"),
            ("SUBSIZE1", sub.xsize, "number of pixels in axis 1 direction"),
            ("SUBSIZE2", sub.ysize, "number of pixels in axis 2 direction"),
            ("FASTAXIS", sub.fastaxis, "fast readout axis direction"),
            ("SLOWAXIS", sub.slowaxis, "slow readout axis direction")]


def _exp_type(det) -> str:
    return IMAGING_EXP_TYPES.get(det.instrument, "N/A|").split("|")[0]


def _write_bytes_if_changed(path: Path, data: bytes) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


def _hdul_bytes(hdul) -> bytes:
    buf = io.BytesIO()
    hdul.writeto(buf)
    return buf.getvalue()


def distortion_tree(detector: str, filename: str = "distortion.asdf") -> dict:
    """The ASDF tree of a DISTORTION reference (``model`` and ``meta``, CRDS layout)."""
    det = _detector(detector)
    meta = {
        "author": "webbcal simulator",
        "date": "2022-08-01T00:00:00.000",
        "description": f"Simulated distortion for {det.name}: cubic polynomial, "
                       f"{pixel_scale(det.name)} arcsec/pixel",
        "exposure": {"type": _exp_type(det), "p_exptype": IMAGING_EXP_TYPES.get(det.instrument, "N/A|")},
        "filename": filename,
        "instrument": {"name": det.instrument, "detector": det.name},
        "model_type": "DistortionModel",
        "origin": "WEBBCAL",
        "pedigree": "GROUND",
        "reftype": "distortion",
        "telescope": "JWST",
        "useafter": USEAFTER,
        "input_units": "pix",
        "output_units": "arcsec",
        "simspec": stage2_reference_spec("distortion", det.name),
        "subarray": {"name": "GENERIC"},
    }
    if det.instrument == "NIRCAM":
        meta["instrument"].update({"module": "A" if det.name.startswith("NRCA") else "B",
                                   "channel": "LONG" if det.name.endswith("LONG") else "SHORT",
                                   "p_pupil": "CLEAR|MASKRND|MASKBAR|F162M|F164N|GRISMR|GRISMC|"})
    return {"meta": meta, "model": distortion_model(det.name)}


def write_distortion(path, detector: str) -> str:
    """Write the DISTORTION reference (ASDF) of a detector; unchanged bytes are not rewritten."""
    import asdf

    path = Path(path)
    buf = io.BytesIO()
    asdf.AsdfFile(distortion_tree(detector, path.name)).write_to(buf)
    _write_bytes_if_changed(path, buf.getvalue())
    return str(path)


def _dq_def_hdu():
    names = [("DO_NOT_USE", 1, "Bad pixel. Do not use."),
             ("NO_FLAT_FIELD", 1 << 18, "Flat field cannot be measured")]
    cols = [fits.Column(name="BIT", format="J", array=np.array([0, 18], np.int32)),
            fits.Column(name="VALUE", format="J", bzero=2 ** 31,
                        array=np.array([v for _, v, _ in names], np.uint32)),
            fits.Column(name="NAME", format="40A", array=np.array([n for n, _, _ in names])),
            fits.Column(name="DESCRIPTION", format="80A", array=np.array([d for _, _, d in names]))]
    return fits.BinTableHDU.from_columns(cols, name="DQ_DEF")


def write_flat(path, detector: str, subarray, filter_name: str, pupil: str | None = None) -> str:
    """Write a FLAT reference (SCI, ERR, DQ, DQ_DEF) for a detector window and filter / pupil."""
    det = _detector(detector)
    sub = _subarray(det.name, subarray)
    path = Path(path)
    arrays = flat_arrays(det.name, sub, filter_name)
    cards = common_cards(path, "flat", det, "FlatModel",
                          f"Simulated FLAT for {det.name} {sub.name} {filter_name}",
                          stage2_reference_spec("flat", det.name, sub, filter_name, pupil))
    cards += _nircam_cards(det) + _subarray_cards(sub)
    cards += [("EXP_TYPE", _exp_type(det), "type of data"),
              ("P_EXP_TY", IMAGING_EXP_TYPES.get(det.instrument, "N/A|"), "applicable EXP_TYPE values"),
              ("FILTER", filter_name, "filter element")]
    if pupil is not None:
        cards.append(("PUPIL", pupil, "pupil element"))
    hdr = header_from_cards(cards)
    hdr.add_history("flat = qe_response * nominal_gain / gain: see simulator/stage2_references.py")
    hdus = [fits.PrimaryHDU(header=hdr)]
    for name in ("SCI", "ERR", "DQ"):
        hdus.append(fits.ImageHDU(arrays[name], name=name))
    hdus.append(_dq_def_hdu())
    _write_bytes_if_changed(path, _hdul_bytes(fits.HDUList(hdus)))
    return str(path)


def write_photom(path, detector: str) -> str:
    """Write the imaging PHOTOM reference of a detector (one row per filter / pupil)."""
    det = _detector(detector)
    path = Path(path)
    rows = photom_rows(det.name)
    pixar_sr, pixar_a2 = pixel_area_sr(det.name)
    cards = common_cards(path, "photom", det, _PHOTOM_MODEL.get(det.instrument, "PhotomModel"),
                          f"Simulated imaging PHOTOM for {det.name}",
                          stage2_reference_spec("photom", det.name))
    cards += _nircam_cards(det)
    cards += [("EXP_TYPE", _exp_type(det), "type of data"),
              ("P_EXP_TY", IMAGING_EXP_TYPES.get(det.instrument, "N/A|"), "applicable EXP_TYPE values"),
              ("PIXAR_SR", pixar_sr, "nominal pixel area in steradians"),
              ("PIXAR_A2", pixar_a2, "nominal pixel area in arcsec^2")]
    hdr = header_from_cards(cards)
    hdr.add_history("PHOTMJSR from simulator.stage2_references.photmjsr")
    second = "subarray" if det.instrument == "MIRI" else "pupil"
    cols = [fits.Column(name="filter", format="12A", array=np.array([r[0] for r in rows])),
            fits.Column(name=second, format="17A" if second == "subarray" else "12A",
                        array=np.array([r[1] for r in rows])),
            fits.Column(name="photmjsr", format="E", array=np.array([r[2] for r in rows], np.float32)),
            fits.Column(name="uncertainty", format="E", array=np.array([r[3] for r in rows], np.float32))]
    table = fits.BinTableHDU.from_columns(cols, name="PHOTOM")
    table.header["BUNIT"] = ("MJy/sr/(DN/s)", "units of photmjsr")
    _write_bytes_if_changed(path, _hdul_bytes(fits.HDUList([fits.PrimaryHDU(header=hdr), table])))
    return str(path)


def write_area(path, detector: str, subarray="FULL") -> str:
    """Write the AREA (pixel area map) reference of a detector window."""
    det = _detector(detector)
    sub = _subarray(det.name, subarray)
    path = Path(path)
    pixar_sr, pixar_a2 = pixel_area_sr(det.name)
    cards = common_cards(path, "area", det, "PixelAreaModel",
                          f"Simulated pixel area map for {det.name} {sub.name}",
                          stage2_reference_spec("area", det.name, sub))
    cards += _nircam_cards(det) + _subarray_cards(sub)
    cards += [("EXP_TYPE", _exp_type(det), "type of data"),
              ("P_EXP_TY", IMAGING_EXP_TYPES.get(det.instrument, "N/A|"), "applicable EXP_TYPE values"),
              ("PIXAR_SR", pixar_sr, "nominal pixel area in steradians"),
              ("PIXAR_A2", pixar_a2, "nominal pixel area in arcsec^2")]
    hdr = header_from_cards(cards)
    sci = fits.ImageHDU(pixel_area_map(det.name, sub), name="SCI")
    sci.header["BUNIT"] = ("", "pixel area relative to PIXAR_SR")
    _write_bytes_if_changed(path, _hdul_bytes(fits.HDUList([fits.PrimaryHDU(header=hdr), sci])))
    return str(path)


def apcorr_reference_spec(detector: str, filters) -> str:
    """16-hex-digit hash of what a detector's APCORR reference depends on (SIMSPEC)."""
    det = _detector(detector)
    entries = _apcorr_entries(det.name, filters)
    psfs = [imaging_psf(det.name, f, p).to_dict() for f, p in entries]
    parts = [GENERATOR_VERSION, "apcorr", det.name, entries, psfs, APCORR_EEFRACTIONS,
             APCORR_NPHASE, APCORR_RADIUS_STEP, MIRI_IMAGING_SUBARRAYS if det.instrument == "MIRI" else None,
             "annulus max(8, 4 lam/D), max(13, 6.5 lam/D); apcorr 1/(EE - A B); whole radii"]
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def write_apcorr(path, detector: str, filters) -> str:
    """Write the imaging APCORR reference of a detector (CRDS format: an ``APCORR`` table).

    Parameters
    ----------
    path : str or Path
    detector : str
        DETECTOR keyword value (NIRCam, NIRISS or MIRI imager).
    filters : iterable of (filter, pupil)
        The filters (and pupils; ignored for MIRI) to tabulate.

    Returns
    -------
    str
        The path written (unchanged bytes are not rewritten).
    """
    det = _detector(detector)
    path = Path(path)
    table = apcorr_table(det.name, filters)
    names = sorted({f.decode() if isinstance(f, bytes) else str(f) for f in table["filter"]})
    cards = common_cards(path, "apcorr", det, _APCORR_MODEL.get(det.instrument, "ReferenceFileModel"),
                         f"Simulated imaging aperture corrections for {det.name}",
                         apcorr_reference_spec(det.name, filters))
    cards += _nircam_cards(det)
    cards += [("EXP_TYPE", _exp_type(det), "type of data"),
              ("P_EXP_TY", IMAGING_EXP_TYPES.get(det.instrument, "N/A|"), "applicable EXP_TYPE values")]
    hdr = header_from_cards(cards)
    hdr.add_history("Airy PSF of simulator.scenes.PSF, pixel-integrated as rendered; EE from "
                    "exact-aperture photometry averaged over sub-pixel positions")
    hdr.add_history("apcorr = 1 / (EE(radius) - pi radius**2 B), B = PSF surface brightness in "
                    "the skyin..skyout annulus: see simulator/stage2_references.py")
    hdr.add_history("filters: " + ", ".join(names))
    hdu = fits.BinTableHDU(table, name="APCORR")
    hdu.header["TUNIT4"] = "pixel"
    hdu.header["TUNIT6"] = "pixel"
    hdu.header["TUNIT7"] = "pixel"
    _write_bytes_if_changed(path, _hdul_bytes(fits.HDUList([fits.PrimaryHDU(header=hdr), hdu])))
    return str(path)
