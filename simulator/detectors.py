"""JWST detector geometry, subarrays, frame timing and per-pixel "truth" properties.

Everything here is synthetic but shaped like the real detectors: the arrays that
:func:`detector_properties` returns are the truth that the simulator applies to ramps
(:mod:`simulator.ramps`) and that the reference files (:mod:`simulator.references`)
describe, so a pipeline that applies those references correctly recovers the input scene.

Geometry (DMS orientation, ``(ny, nx)``)
----------------------------------------
=========================  =============  =================================================
detectors                  full shape     reference pixels / amplifiers
=========================  =============  =================================================
NIRCam, NIRISS, NIRSpec,   (2048, 2048)   4-pixel border (rows and columns); 4 outputs of
FGS                                       512 columns each on full frame
MIRI (MIRIMAGE, MIRIFU*)   (1024, 1032)   4 reference columns on each side, no reference
                                          rows; 4 interleaved outputs (column % 4)
=========================  =============  =================================================

Subarray positions (``SUBSTRT1/2``) are representative, not the SIAF values; the sizes,
names and output counts are those of the archive. Near-IR subarrays are read through one
output (``namps`` 1); MIRI always reads through its 4 interleaved outputs (``namps`` 4).

Per-pixel properties (:class:`DetectorProperties`, seeded by detector name, ``seed`` and
``version``)
-----------------------------------------------------------------------------------------
================  =====================================  ==================================
array             near-IR                                MIRI
================  =====================================  ==================================
bias              ~12000 DN + amplifier, column, pixel   ~11000 DN + amplifier, pixel
gain              ~2.0 e/DN (detector mean +-5 %,        ~4.0 e/DN, 2 % per pixel
                  2 % per pixel); NaN = NO_GAIN_VALUE;
                  0 on reference pixels (as in CRDS)
readnoise_cds     ~12 DN (CDS), 8 % per pixel            ~14 DN (CDS)
dark_rate         ~0.005 DN/s; WARM 0.1-1 DN/s;          ~0.03 DN/s; same hot/warm rules
                  HOT 2-20 DN/s
linearity_coeffs  correction c0..c3 on bias-subtracted   the same correction expressed on
                  DN: c0=0, c1=1, c2~2e-6, c3~1e-11      raw DN (bias included), because
                                                         MIRI has no superbias step
saturation        55000-62000 raw DN (bias included),    57000-63000 raw DN
                  integer-valued; NaN = NO_SAT_CHECK
dq (MASK)         DEAD|DO_NOT_USE 1 per mille, HOT 1, WARM 2, NO_GAIN_VALUE|DO_NOT_USE 0.5,
                  REFERENCE_PIXEL (only) on the reference pixels
================  =====================================  ==================================

Reference pixels follow the CRDS convention: the MASK flags them REFERENCE_PIXEL *without*
DO_NOT_USE (the refpix step of the reference pipeline excludes DO_NOT_USE pixels from its
means, so a DO_NOT_USE reference pixel is unusable for the drift correction; jwst issue #1284
calls such MASK files badly flagged), and the GAIN is 0 there, so that ramp_fit flags them
NO_GAIN_VALUE | DO_NOT_USE in the rate products (jwst issue #7015).

``version=2`` is a later "measurement" of the same detector: the gain is 3 % higher (plus a
0.5 % per-pixel change) and the CDS read noise 4 % higher; every other array is shared with
version 1. Simulating with ``properties_version=2`` makes the version-2 GAIN/READNOISE
references the truthful ones.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Detector",
    "Subarray",
    "DetectorProperties",
    "get_detector",
    "get_subarray",
    "frame_time",
    "detector_properties",
    "list_subarrays",
    "DQ",
]

# DQ bit values (those of the reference pipeline; duplicated from runner.dqflags so the
# simulator stays importable on its own).
DQ = {
    "DO_NOT_USE": 1,
    "SATURATED": 2,
    "JUMP_DET": 4,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "REFERENCE_PIXEL": 1 << 31,
}


@dataclass(frozen=True)
class Detector:
    """One JWST detector.

    Attributes
    ----------
    instrument : str
        'NIRCAM', 'NIRISS', 'NIRSPEC', 'FGS' or 'MIRI'.
    name : str
        DETECTOR keyword value, e.g. 'NRCA1', 'NRCALONG', 'NIS', 'NRS1', 'MIRIMAGE'.
    full_shape : tuple of int
        ``(ny, nx)`` of the full frame in DMS orientation, reference pixels included.
    namps : int
        Number of outputs on a full-frame read (4).
    fastaxis, slowaxis : int
        FASTAXIS / SLOWAXIS keyword values.
    """

    instrument: str
    name: str
    full_shape: tuple
    namps: int
    fastaxis: int = 1
    slowaxis: int = 2

    @property
    def is_miri(self) -> bool:
        """True for the MIRI Si:As detectors (no reference rows, interleaved outputs)."""
        return self.instrument == "MIRI"

    @property
    def nref(self) -> int:
        """Width of the reference-pixel border (4)."""
        return 4

    def reference_pixel_mask(self) -> np.ndarray:
        """Boolean full-frame mask of the reference pixels.

        Returns
        -------
        ndarray of bool, shape ``full_shape``
        """
        mask = np.zeros(self.full_shape, dtype=bool)
        mask[:, :4] = True
        mask[:, -4:] = True
        if not self.is_miri:
            mask[:4, :] = True
            mask[-4:, :] = True
        return mask


_NIR = (2048, 2048)
_MIRI = (1024, 1032)

# (instrument, full shape, fastaxis, slowaxis)
_DETECTORS = {
    "NRCA1": ("NIRCAM", _NIR, -1, 2),
    "NRCA2": ("NIRCAM", _NIR, 1, -2),
    "NRCA3": ("NIRCAM", _NIR, -1, 2),
    "NRCA4": ("NIRCAM", _NIR, 1, -2),
    "NRCALONG": ("NIRCAM", _NIR, -1, 2),
    "NRCB1": ("NIRCAM", _NIR, 1, -2),
    "NRCB2": ("NIRCAM", _NIR, -1, 2),
    "NRCB3": ("NIRCAM", _NIR, 1, -2),
    "NRCB4": ("NIRCAM", _NIR, -1, 2),
    "NRCBLONG": ("NIRCAM", _NIR, 1, -2),
    "NIS": ("NIRISS", _NIR, -2, -1),
    "NRS1": ("NIRSPEC", _NIR, 2, 1),
    "NRS2": ("NIRSPEC", _NIR, -2, -1),
    "GUIDER1": ("FGS", _NIR, -2, 1),
    "GUIDER2": ("FGS", _NIR, 2, -1),
    "MIRIMAGE": ("MIRI", _MIRI, 1, 2),
    "MIRIFULONG": ("MIRI", _MIRI, 1, 2),
    "MIRIFUSHORT": ("MIRI", _MIRI, 1, 2),
}


def get_detector(name: str) -> Detector:
    """Return the :class:`Detector` for a DETECTOR keyword value.

    Parameters
    ----------
    name : str
        e.g. 'NRCA1', 'NRCALONG', 'NIS', 'NRS1', 'MIRIMAGE' (case-insensitive;
        'NRCA5' / 'NRCB5' are accepted for the long-wavelength detectors).

    Raises
    ------
    ValueError
        If the name is not a JWST detector.
    """
    key = str(name).upper().strip()
    key = {"NRCA5": "NRCALONG", "NRCB5": "NRCBLONG"}.get(key, key)
    if key not in _DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {sorted(_DETECTORS)}")
    instrument, shape, fast, slow = _DETECTORS[key]
    return Detector(instrument=instrument, name=key, full_shape=shape, namps=4,
                    fastaxis=fast, slowaxis=slow)


@dataclass(frozen=True)
class Subarray:
    """A readout window, in the archive's keywords.

    Attributes
    ----------
    name : str
        SUBARRAY keyword value ('FULL', 'SUB64P', ...).
    xstart, ystart : int
        SUBSTRT1 / SUBSTRT2, 1-based full-frame column / row of the first pixel.
    xsize, ysize : int
        SUBSIZE1 / SUBSIZE2 (columns, rows).
    namps : int
        Number of outputs used (NOUTPUTS).
    fastaxis, slowaxis : int
        FASTAXIS / SLOWAXIS.
    """

    name: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    namps: int
    fastaxis: int
    slowaxis: int

    @property
    def shape(self) -> tuple:
        """``(ysize, xsize)``."""
        return (self.ysize, self.xsize)

    @property
    def slices(self) -> tuple:
        """0-based ``(yslice, xslice)`` that cut this window out of a full-frame array."""
        return (slice(self.ystart - 1, self.ystart - 1 + self.ysize),
                slice(self.xstart - 1, self.xstart - 1 + self.xsize))

    def cut(self, full: np.ndarray) -> np.ndarray:
        """Cut the window out of an array whose last two axes are the full frame."""
        ys, xs = self.slices
        return full[..., ys, xs]


# name -> (xstart, ystart, xsize, ysize), per instrument; representative positions.
_SUBARRAYS = {
    "NIRCAM": {
        "SUB64P": (1, 1, 64, 64),
        "SUB160P": (1, 1, 160, 160),
        "SUB400P": (1, 1, 400, 400),
        "SUB160": (945, 945, 160, 160),
        "SUB320": (865, 865, 320, 320),
        "SUB640": (705, 705, 640, 640),
        "SUBGRISM64": (1, 1, 2048, 64),
        "SUBGRISM128": (1, 1, 2048, 128),
        "SUBGRISM256": (1, 1, 2048, 256),
        "SUB320A335R": (1, 1729, 320, 320),
        "SUB320A430R": (1, 1729, 320, 320),
        "SUB640A210R": (1, 1409, 640, 640),
    },
    "NIRISS": {
        "SUB64": (1, 1985, 64, 64),
        "SUB80": (1, 1969, 80, 80),
        "SUB128": (1, 1921, 128, 128),
        "SUB256": (1, 1793, 256, 256),
        "SUBSTRIP96": (1, 1803, 2048, 96),
        "SUBSTRIP256": (1, 1793, 2048, 256),
    },
    "NIRSPEC": {
        "SUBS200A1": (1, 1025, 2048, 64),
        "SUBS200A2": (1, 993, 2048, 64),
        "SUBS400A1": (1, 1057, 2048, 128),
        "SUB2048": (1, 946, 2048, 32),
        "SUB512": (1, 946, 512, 32),
        "SUB32": (1, 946, 32, 32),
        "ALLSLITS": (1, 897, 2048, 256),
    },
    "FGS": {
        "SUB128CNTR": (961, 961, 128, 128),
        "SUB32CNTR": (1009, 1009, 32, 32),
        "SUB8CNTR": (1021, 1021, 8, 8),
    },
    "MIRI": {
        "BRIGHTSKY": (457, 51, 512, 512),
        "SUB256": (413, 51, 256, 256),
        "SUB128": (1, 889, 136, 128),
        "SUB64": (1, 779, 72, 64),
        "SLITLESSPRISM": (1, 529, 72, 416),
        "MASK1065": (1, 19, 288, 224),
        "MASK1140": (1, 245, 288, 224),
        "MASK1550": (1, 467, 288, 224),
        "MASKLYOT": (1, 717, 320, 304),
    },
}

# MIRI frame times (s) of the documented subarrays (FAST readout). MIRI's timing has no
# simple closed form over all windows; an unknown window falls back on
# (xsize / 4 + 13) * ysize * 10 us, which is exact for the full frame (2.77504 s).
_MIRI_TFRAME = {
    "FULL": 2.77504,
    "BRIGHTSKY": 0.86528,
    "SUB256": 0.29952,
    "SUB128": 0.11904,
    "SUB64": 0.08544,
    "SLITLESSPRISM": 0.15904,
    "MASK1065": 0.24164,
    "MASK1140": 0.24164,
    "MASK1550": 0.24164,
    "MASKLYOT": 0.49288,
}


def list_subarrays(detector: str) -> list:
    """Names of the subarrays :func:`get_subarray` knows for a detector ('FULL' first)."""
    det = get_detector(detector)
    return ["FULL"] + sorted(_SUBARRAYS[det.instrument])


def get_subarray(detector: str, name: str) -> Subarray:
    """Return the :class:`Subarray` called ``name`` on ``detector``.

    Parameters
    ----------
    detector : str
        DETECTOR keyword value.
    name : str
        SUBARRAY keyword value ('FULL', 'SUB64P', 'SUBGRISM64', 'SUB80', 'SUB64', ...).

    Raises
    ------
    ValueError
        If the subarray is not known for that detector's instrument.
    """
    det = get_detector(detector)
    key = str(name).upper().strip()
    if key in ("FULL", "GENERIC"):
        ny, nx = det.full_shape
        return Subarray(key, 1, 1, nx, ny, det.namps, det.fastaxis, det.slowaxis)
    table = _SUBARRAYS[det.instrument]
    if key not in table:
        raise ValueError(
            f"unknown subarray {name!r} for {det.name} ({det.instrument}); "
            f"known: {['FULL'] + sorted(table)}")
    xstart, ystart, xsize, ysize = table[key]
    namps = 4 if det.is_miri else 1
    return Subarray(key, xstart, ystart, xsize, ysize, namps, det.fastaxis, det.slowaxis)


def frame_time(detector: str, subarray: Subarray) -> float:
    """TFRAME, the time to read one frame, in seconds.

    Near-IR: ``(xsize / namps + 12) * (ysize + 1) * 10 us`` (10.73676 s for the full frame
    with 4 outputs). MIRI: the documented FAST frame times (2.77504 s full frame).

    Parameters
    ----------
    detector : str
        DETECTOR keyword value.
    subarray : Subarray
        The readout window.

    Returns
    -------
    float
        Frame time in s.
    """
    det = get_detector(detector)
    if det.is_miri:
        if subarray.name in _MIRI_TFRAME:
            return _MIRI_TFRAME[subarray.name]
        return round((subarray.xsize / 4 + 13) * subarray.ysize * 1e-5, 5)
    return round((subarray.xsize / subarray.namps + 12) * (subarray.ysize + 1) * 1e-5, 5)


# --------------------------------------------------------------------------------------
# Per-pixel properties
# --------------------------------------------------------------------------------------

@dataclass
class DetectorProperties:
    """Full-frame per-pixel truth for one detector.

    All arrays are full frame ``(ny, nx)`` (``linearity_coeffs``: ``(ncoeffs, ny, nx)``),
    read-only, and exactly what the matching reference files contain.

    Attributes
    ----------
    detector : Detector
    seed, version : int
    bias : ndarray float32, DN
        Superbias (zero-signal level of a ramp).
    gain : ndarray float32, e/DN
        NaN where DQ has NO_GAIN_VALUE, 0 on reference pixels (the GAIN reference's values).
    readnoise_cds : ndarray float32, DN
        Noise of the difference of two single-frame groups.
    dark_rate : ndarray float32, DN/s
        Dark current (hot and warm pixels included; 0 on reference pixels).
    linearity_coeffs : ndarray float32, (ncoeffs, ny, nx)
        The correction polynomial, linear = sum_k c_k d**k, as LINEARITY stores it
        (near-IR: d bias-subtracted; MIRI: d raw DN). NaN where NO_LIN_CORR.
    saturation : ndarray float32, DN
        Saturation threshold in raw DN (bias included), integer-valued; NaN where NO_SAT_CHECK.
    dq : ndarray uint32
        MASK reference DQ.
    linearity_dq, saturation_dq, superbias_dq, dark_dq : ndarray uint32
        The DQ arrays of those reference files.
    nominal_gain : float
        Detector mean gain (e/DN); what the simulator uses where ``gain`` is NaN.
    """

    detector: Detector
    seed: int
    version: int
    bias: np.ndarray
    gain: np.ndarray
    readnoise_cds: np.ndarray
    dark_rate: np.ndarray
    linearity_coeffs: np.ndarray
    saturation: np.ndarray
    dq: np.ndarray
    linearity_dq: np.ndarray
    saturation_dq: np.ndarray
    superbias_dq: np.ndarray
    dark_dq: np.ndarray
    nominal_gain: float
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ---- derived arrays the simulator uses -------------------------------------------
    @property
    def sim_gain(self) -> np.ndarray:
        """Physical gain (e/DN) used by the simulator: ``gain`` with NaN or <= 0 -> nominal_gain."""
        if "sim_gain" not in self._cache:
            with np.errstate(invalid="ignore"):
                usable = np.isfinite(self.gain) & (self.gain > 0)
            g = np.where(usable, self.gain, np.float32(self.nominal_gain))
            self._cache["sim_gain"] = _readonly(g.astype(np.float32))
        return self._cache["sim_gain"]

    @property
    def linearity_offset(self) -> np.ndarray | float:
        """The DN value the correction polynomial's argument is measured from.

        0 for near-IR (the correction is applied after superbias), ``bias`` for MIRI.
        """
        return self.bias if self.detector.is_miri else 0.0

    @property
    def sim_linearity_coeffs(self) -> np.ndarray:
        """``linearity_coeffs`` with NO_LIN_CORR (NaN) pixels replaced by the identity."""
        if "sim_coeffs" not in self._cache:
            c = np.array(self.linearity_coeffs, dtype=np.float32)
            bad = ~np.all(np.isfinite(c), axis=0)
            c[:, bad] = 0.0
            c[1, bad] = 1.0
            self._cache["sim_coeffs"] = _readonly(c)
        return self._cache["sim_coeffs"]

    def nonlinear_forward(self, linear_dn: np.ndarray, subarray: Subarray | None = None,
                          *, iterations: int = 6) -> np.ndarray:
        """Apply the detector's non-linearity to a linear signal (the inverse of LINEARITY).

        Parameters
        ----------
        linear_dn : ndarray, DN above bias
            Linear accumulated signal over ``subarray`` (full frame if None); any leading
            axes broadcast.
        subarray : Subarray, optional
        iterations : int
            Newton iterations (6 reaches float32 precision below saturation).

        Returns
        -------
        ndarray float32, DN above bias
            Measured (non-linear) signal ``m`` such that the correction polynomial gives
            back ``linear_dn``: ``sum_k c_k (o + m)**k = o + linear_dn`` where ``o`` is
            :attr:`linearity_offset`.
        """
        sub = subarray or get_subarray(self.detector.name, "FULL")
        coeffs = sub.cut(self.sim_linearity_coeffs)
        offset = self.linearity_offset
        if not np.isscalar(offset):
            offset = sub.cut(offset)
        return invert_polynomial(np.asarray(linear_dn, dtype=np.float32), coeffs, offset,
                                 iterations=iterations)


def invert_polynomial(linear: np.ndarray, coeffs: np.ndarray, offset=0.0, *,
                      iterations: int = 6) -> np.ndarray:
    """Solve ``sum_k c_k (offset + m)**k = offset + linear`` for ``m`` (Newton, vectorised).

    Parameters
    ----------
    linear : ndarray float32
        Linear signal (DN above ``offset``).
    coeffs : ndarray, (ncoeffs, ny, nx)
        Correction polynomial, increasing and convex over the range of interest.
    offset : float or ndarray
        DN added to the argument (0 for near-IR, bias for MIRI).
    iterations : int

    Returns
    -------
    ndarray float32
    """
    c = coeffs.astype(np.float32, copy=False)
    off = np.float32(offset) if np.isscalar(offset) else offset.astype(np.float32, copy=False)
    target = linear + off
    m = linear.astype(np.float32, copy=True)   # P(x) >= x for x >= 0: start from above
    for _ in range(iterations):
        x = off + m
        # Horner for value and derivative
        val = c[-1] * np.ones_like(x)
        der = np.zeros_like(x)
        for k in range(c.shape[0] - 2, -1, -1):
            der = der * x + val
            val = val * x + c[k]
        m = m - (val - target) / der
    return m


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _rng(*parts) -> np.random.Generator:
    text = "|".join(str(p) for p in parts).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text).digest()[:8], "little"))


def detector_properties(name: str, *, seed: int = 0, version: int = 1) -> DetectorProperties:
    """Deterministic full-frame per-pixel properties of a detector.

    Parameters
    ----------
    name : str
        DETECTOR keyword value.
    seed : int
        Selects a different (but equally deterministic) realisation.
    version : int
        1 or 2: version 2 has a 3 % higher gain and a 4 % higher read noise (a later
        calibration of the same detector); all other arrays are identical.

    Returns
    -------
    DetectorProperties
        Cached: repeated calls return the same object, whose arrays are read-only.
    """
    det = get_detector(name)
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2, got {version!r}")
    return _cached_properties(det.name, int(seed), int(version))


@functools.lru_cache(maxsize=6)
def _cached_properties(name: str, seed: int, version: int) -> DetectorProperties:
    det = get_detector(name)
    if version == 2:
        base = _cached_properties(det.name, seed, 1)
        rng = _rng("v2", det.name, seed)
        shape = det.full_shape
        jitter = (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(0.005 * 12 ** 0.5)
        scale = np.float32(1.03) * (1 + jitter)
        gain = _readonly((base.gain * scale).astype(np.float32))
        rn = _readonly((base.readnoise_cds * np.float32(1.04)).astype(np.float32))
        return DetectorProperties(
            detector=det, seed=seed, version=2, bias=base.bias, gain=gain, readnoise_cds=rn,
            dark_rate=base.dark_rate, linearity_coeffs=base.linearity_coeffs,
            saturation=base.saturation, dq=base.dq, linearity_dq=base.linearity_dq,
            saturation_dq=base.saturation_dq, superbias_dq=base.superbias_dq,
            dark_dq=base.dark_dq, nominal_gain=base.nominal_gain * 1.03)
    return _make_properties(det, seed)


def _make_properties(det: Detector, seed: int) -> DetectorProperties:
    rng = _rng("props", det.name, seed)
    ny, nx = det.full_shape
    shape = det.full_shape
    miri = det.is_miri
    refmask = det.reference_pixel_mask()
    # detector-level means, varied per detector by a few per cent
    dl = _rng("level", det.name, seed).random(4)
    nominal_gain = (4.0 if miri else 2.0) * (0.95 + 0.1 * dl[0])
    rn_mean = (14.0 if miri else 12.0) * (0.92 + 0.16 * dl[1])

    def normal(sigma):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)

    def spread(sigma):
        # uniform, zero mean, standard deviation sigma (cheaper than a normal draw)
        u = rng.random(shape, dtype=np.float32) - np.float32(0.5)
        return u * np.float32(sigma * 12 ** 0.5)

    cols = np.arange(nx)
    if miri:
        amp = cols % 4
    else:
        amp = np.minimum(cols // 512, 3)

    # bias
    amp_off = rng.normal(0.0, 400.0, 4).astype(np.float32)
    col_off = rng.normal(0.0, 0 if miri else 40.0, nx).astype(np.float32)
    level = np.float32(11000.0 if miri else 12000.0)
    bias = (level + amp_off[amp] + col_off)[None, :] + normal(150.0)
    bias = np.round(bias, 2).astype(np.float32)

    # classes of bad pixels from one uniform draw (disjoint)
    u = rng.random(shape, dtype=np.float32)
    u[refmask] = 1.0
    dead = u < 1e-3
    hot = (u >= 1e-3) & (u < 2e-3)
    warm = (u >= 2e-3) & (u < 4e-3)
    nogain = (u >= 4e-3) & (u < 4.5e-3)
    nolin = (u >= 4.5e-3) & (u < 5e-3)
    nosat = (u >= 5e-3) & (u < 5.3e-3)
    unrel_bias = (u >= 5.3e-3) & (u < 5.8e-3)
    unrel_dark = (u >= 5.8e-3) & (u < 6.3e-3)

    gain = np.float32(nominal_gain) * (1 + spread(0.02))
    gain[nogain] = np.nan
    gain[refmask] = 0.0          # CRDS GAIN convention on reference pixels

    rn = np.float32(rn_mean) * (1 + normal(0.08))
    np.maximum(rn, np.float32(0.3 * rn_mean), out=rn)

    base_dark = 0.03 if miri else 0.005
    dark = np.float32(base_dark) * np.exp(spread(0.3))
    r = rng.random(shape, dtype=np.float32)
    dark[warm] = (0.1 + 0.9 * r[warm])
    dark[hot] = (2.0 + 18.0 * r[hot])
    dark[refmask] = 0.0

    # linearity: correction P(s) = s + c2 s^2 + c3 s^3 on bias-subtracted DN
    c2 = np.float32(2.0e-6) * (1 + spread(0.05))
    c3 = np.float32(1.0e-11) * (1 + spread(0.05))
    c2[refmask] = 0.0
    c3[refmask] = 0.0
    if miri:
        # express in raw DN: Q(d) = P(d - b) + b
        b = bias.astype(np.float64)
        c2d = c2.astype(np.float64)
        c3d = c3.astype(np.float64)
        q0 = -b + c2d * b * b - c3d * b ** 3 + b
        q1 = 1 - 2 * c2d * b + 3 * c3d * b * b
        q2 = c2d - 3 * c3d * b
        q3 = c3d
        coeffs = np.stack([q0, q1, q2, q3]).astype(np.float32)
    else:
        coeffs = np.stack([np.zeros(shape, np.float32), np.ones(shape, np.float32), c2, c3])
    coeffs[:, nolin] = np.nan

    # saturation (raw DN, integer-valued)
    if miri:
        sat = np.clip(np.float32(60000.0) + normal(800.0), 57000, 63000)
    else:
        sat = np.clip(np.float32(58500.0) + normal(1200.0), 55000, 62000)
    sat = np.round(sat).astype(np.float32)
    sat[nosat] = np.nan

    dq = np.zeros(shape, np.uint32)
    dq[dead] = DQ["DEAD"] | DQ["DO_NOT_USE"]
    dq[hot] = DQ["HOT"]
    dq[warm] = DQ["WARM"]
    dq[nogain] = DQ["NO_GAIN_VALUE"] | DQ["DO_NOT_USE"]
    # REFERENCE_PIXEL only: DO_NOT_USE would exclude them from the refpix step's means
    dq[refmask] = DQ["REFERENCE_PIXEL"]

    def flagged(mask, flag):
        a = np.zeros(shape, np.uint32)
        a[mask] = flag
        return _readonly(a)

    return DetectorProperties(
        detector=det, seed=seed, version=1,
        bias=_readonly(bias), gain=_readonly(gain.astype(np.float32)),
        readnoise_cds=_readonly(rn.astype(np.float32)),
        dark_rate=_readonly(dark.astype(np.float32)),
        linearity_coeffs=_readonly(coeffs), saturation=_readonly(sat), dq=_readonly(dq),
        linearity_dq=flagged(nolin, DQ["NO_LIN_CORR"]),
        saturation_dq=flagged(nosat, DQ["NO_SAT_CHECK"]),
        superbias_dq=flagged(unrel_bias, DQ["UNRELIABLE_BIAS"]),
        dark_dq=flagged(unrel_dark, DQ["UNRELIABLE_DARK"]),
        nominal_gain=float(nominal_gain),
    )
