"""Raw up-the-ramp data (what ``_uncal`` SCI stores) from a count-rate image.

:func:`simulate_ramps` turns a rate image in electrons/s over a subarray into uint16 DN
ramps ``(nints, ngroups, ny, nx)`` plus a :class:`RampTruth` recording what a pipeline
should recover. Per-pixel detector properties come from
:func:`simulator.detectors.detector_properties` (the same arrays the reference files carry).

Timing
------
Frame ``f`` (0-based, counted from the reset) is read at ``(f + 1) * TFRAME``. The first
``drop_frames1`` frames are dropped; group ``g`` averages frames
``drop_frames1 + g * (nframes + groupgap) + k``, ``k < nframes``; the ``groupgap`` frames after
each group are skipped (they still integrate). An integration spans
``F = drop_frames1 + ngroups * (nframes + groupgap) - groupgap`` frames.

Effects (names for ``include``) and their parameters
----------------------------------------------------
================  ==================================================================  ==============
name              what is done                                                        parameters
================  ==================================================================  ==============
``poisson``       per-frame Poisson draw of (signal + dark) electrons; off: the       --
                  expectation is accumulated exactly
``dark``          dark current ``dark_rate * gain`` e/s (0 on reference pixels)       DetectorProperties.dark_rate
``badpix``        DEAD pixels collect no signal (nor cosmic rays); HOT/WARM pixels    DetectorProperties.dq
                  keep their large dark; off: dead pixels respond, hot/warm pixels
                  get the median dark
``gain``          electrons -> DN with the per-pixel gain; off: gain 1 e/DN           DetectorProperties.gain
``cosmic_rays``   Poisson number of hits, ``cosmic_ray_rate`` per pixel per second    cosmic_ray_rate
                  over the F * TFRAME of an integration; uniform position and frame;  (default 5e-5
                  charge log-uniform in [100, 50000] e (p(Q) ~ 1/Q); one pixel each;  /pixel/s)
                  every later frame carries the step
``nonlinearity``  measured = inverse of the LINEARITY correction applied to the       linearity_coeffs
                  linear DN (exact to float32), per frame
``bias``          per-pixel superbias added to every frame                            DetectorProperties.bias
``readnoise``     white Gaussian noise per frame, sigma = readnoise_cds / sqrt(2),    readnoise_cds
                  so that single-frame CDS differences have readnoise_cds
``refpix``        per-frame offsets common to all pixels of an output: amplifier      REFPIX_SIGMA
                  (sigma 8 DN) plus even/odd column (sigma 3 DN), with outputs and
                  columns in the detector frame (along the fast axis: DMS y when
                  abs(FASTAXIS) = 2, NIRISS/NIRSpec); only where the refpix step can
                  remove them: near-IR 1-output windows holding any reference pixel,
                  4-output windows holding reference lines across the fast axis,
                  MIRI full frame only (jwst skips MIRI subarrays; 4 outputs are
                  interleaved columns)
``onef``          near-IR full frame only: a 1/f term common to all pixels of one     ONEF_SIGMA
                  fast-read line (rms 4 DN per frame; DMS rows, or DMS columns when     (4 DN)
                  abs(FASTAXIS) = 2), tracked by the side reference pixels
``saturation``    each frame is clipped at the SATURATION value (raw DN); pixels     saturation
                  with NO_SAT_CHECK (NaN) only at 65535
================  ==================================================================  ==============

Reference pixels never see light, dark current or cosmic rays, but get bias, read noise and
offsets. All values are finally rounded and clipped to 0..65535 (uint16).

Truth
-----
``RampTruth.rate_dn`` is ``rate_e / gain`` (DN/s) per integration, 0 on dead and reference
pixels; the dark current is *not* included (the pipeline subtracts it).
``saturated_group`` is the first group whose stored value is >= the SATURATION value (what
the saturation step flags, before any neighbour growth), -1 if none. For multi-frame groups a
group in which only some frames were clipped is *not* marked (its value is below the
threshold), exactly as the reference value test sees it.
``cosmic_rays`` lists every injected hit: ``integ``, ``group`` (first group whose value includes
the charge; ``ngroups`` never occurs: hits after the last read are not drawn), ``frame``, ``y``,
``x`` (subarray coordinates, 0-based) and ``charge_e``.

File format of the truth (:meth:`RampTruth.save`)
-------------------------------------------------
A FITS file: primary header with DETECTOR, SUBARRAY, SUBSTRT1/2, READPATT, NINTS, NGROUPS,
NFRAMES, GROUPGAP, DRPFRMS1, TFRAME, TGROUP, SEED, PROPVER, CRRATE; image extensions
``RATE_DN`` (float32, nints x ny x nx, DN/s) and ``SATGROUP`` (int16); a binary table
``COSMICRAYS`` with columns INTEG, GROUP, FRAME, Y, X (int32) and CHARGE_E (float64).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numba
import numpy as np

from .detectors import (Subarray, detector_properties, frame_time, get_detector,
                        get_subarray)

__all__ = ["Readout", "RampTruth", "simulate_ramps", "readout_for", "ALL_EFFECTS",
           "READ_PATTERNS", "REFPIX_SIGMA", "ONEF_SIGMA", "CR_CHARGE_RANGE"]

ALL_EFFECTS = frozenset({"poisson", "dark", "badpix", "gain", "cosmic_rays", "nonlinearity",
                         "bias", "readnoise", "refpix", "onef", "saturation"})

#: per-frame offsets (DN): amplifier and even/odd column terms
REFPIX_SIGMA = {"amplifier": 8.0, "even_odd": 3.0}
#: rms (DN) of the 1/f row term of near-IR full frames, per frame
ONEF_SIGMA = 4.0
#: cosmic-ray charge range (electrons), log-uniform
CR_CHARGE_RANGE = (100.0, 50000.0)

#: readout patterns: name -> (nframes, groupgap)
READ_PATTERNS = {
    "RAPID": (1, 0), "BRIGHT1": (1, 1), "BRIGHT2": (2, 0), "SHALLOW2": (2, 3),
    "SHALLOW4": (4, 1), "MEDIUM2": (2, 8), "MEDIUM8": (8, 2), "DEEP2": (2, 18),
    "DEEP8": (8, 12), "NISRAPID": (1, 0), "NIS": (4, 0), "NRSRAPID": (1, 0), "NRS": (4, 0),
    "FGSRAPID": (1, 0), "FAST": (1, 0), "FASTR1": (1, 0), "SLOW": (1, 0), "SLOWR1": (1, 0),
}


@dataclass
class Readout:
    """Readout of one exposure (MULTIACCUM parameters).

    Attributes
    ----------
    readpatt : str
        READPATT keyword value.
    nints, ngroups, nframes, groupgap : int
        NINTS, NGROUPS, NFRAMES, GROUPGAP.
    tframe : float
        TFRAME, s.
    drop_frames1 : int
        DRPFRMS1: frames dropped at the start of each integration.
    """

    readpatt: str
    nints: int
    ngroups: int
    nframes: int
    groupgap: int
    tframe: float
    drop_frames1: int = 0

    @property
    def tgroup(self) -> float:
        """TGROUP = (nframes + groupgap) * tframe, s."""
        return (self.nframes + self.groupgap) * self.tframe

    @property
    def frames_per_integration(self) -> int:
        """Frames from the reset to the last read frame (dropped and skipped included)."""
        return self.drop_frames1 + self.ngroups * (self.nframes + self.groupgap) - self.groupgap

    @property
    def effinttm(self) -> float:
        """EFFINTTM = (ngroups - 1) * tgroup, s."""
        return (self.ngroups - 1) * self.tgroup

    @property
    def effexptm(self) -> float:
        """EFFEXPTM = nints * effinttm, s."""
        return self.nints * self.effinttm

    @property
    def integration_time(self) -> float:
        """Time from the reset to the last read of an integration, s."""
        return self.frames_per_integration * self.tframe

    @property
    def frmdivsr(self) -> int:
        """FRMDIVSR (= nframes here: groups are averages of their frames)."""
        return self.nframes

    def group_frames(self, group: int) -> np.ndarray:
        """0-based frame indices averaged into ``group``."""
        start = self.drop_frames1 + group * (self.nframes + self.groupgap)
        return np.arange(start, start + self.nframes)

    def group_times(self) -> np.ndarray:
        """Mean exposure time of each group's frames since the reset, s (frame f at (f+1)*tframe)."""
        return np.array([(self.group_frames(g) + 1).mean() * self.tframe
                         for g in range(self.ngroups)])

    def header(self) -> dict:
        """Readout keywords for a FITS header."""
        return {"READPATT": self.readpatt, "NINTS": self.nints, "NGROUPS": self.ngroups,
                "NFRAMES": self.nframes, "GROUPGAP": self.groupgap, "DRPFRMS1": self.drop_frames1,
                "FRMDIVSR": self.frmdivsr, "TFRAME": self.tframe, "TGROUP": self.tgroup,
                "EFFINTTM": self.effinttm, "EFFEXPTM": self.effexptm}


def readout_for(readpatt: str, detector: str, subarray: Subarray | str, *, nints: int,
                ngroups: int, drop_frames1: int = 0) -> Readout:
    """Build a :class:`Readout` from a READPATT name and the window's frame time.

    Parameters
    ----------
    readpatt : str
        One of :data:`READ_PATTERNS` (e.g. 'RAPID', 'MEDIUM8', 'NISRAPID', 'NRSRAPID', 'FAST').
    detector : str
    subarray : Subarray or str
    nints, ngroups : int
    drop_frames1 : int
    """
    key = readpatt.upper()
    if key not in READ_PATTERNS:
        raise ValueError(f"unknown READPATT {readpatt!r}; known: {sorted(READ_PATTERNS)}")
    if isinstance(subarray, str):
        subarray = get_subarray(detector, subarray)
    nframes, groupgap = READ_PATTERNS[key]
    return Readout(key, int(nints), int(ngroups), nframes, groupgap,
                   frame_time(detector, subarray), int(drop_frames1))


CR_DTYPE = np.dtype([("integ", np.int32), ("group", np.int32), ("frame", np.int32),
                     ("y", np.int32), ("x", np.int32), ("charge_e", np.float64)])


@dataclass
class RampTruth:
    """What a correct pipeline should recover from :func:`simulate_ramps` output.

    Attributes
    ----------
    rate_dn : ndarray float32, (nints, ny, nx), DN/s
        True count rate (rate_e / gain), dark excluded; 0 on dead and reference pixels.
    cosmic_rays : structured ndarray
        Fields integ, group, frame, y, x (subarray, 0-based), charge_e (electrons).
    saturated_group : ndarray int16, (nints, ny, nx)
        First group >= the saturation value, -1 if none.
    meta : dict
        Detector, subarray, readout and seed (FITS keyword names).
    """

    rate_dn: np.ndarray
    cosmic_rays: np.ndarray
    saturated_group: np.ndarray
    meta: dict = field(default_factory=dict)

    def to_fits(self):
        """Return an ``astropy.io.fits.HDUList`` (format in the module docstring)."""
        from astropy.io import fits
        primary = fits.PrimaryHDU()
        for k, v in self.meta.items():
            primary.header[k] = v
        cr = np.asarray(self.cosmic_rays, dtype=CR_DTYPE)
        cols = [fits.Column(name=n.upper(), format="D" if n == "charge_e" else "J", array=cr[n])
                for n in CR_DTYPE.names]
        return fits.HDUList([
            primary,
            fits.ImageHDU(np.asarray(self.rate_dn, np.float32), name="RATE_DN"),
            fits.ImageHDU(np.asarray(self.saturated_group, np.int16), name="SATGROUP"),
            fits.BinTableHDU.from_columns(cols, name="COSMICRAYS"),
        ])

    def save(self, path) -> str:
        """Write the truth to a FITS file; returns the path."""
        self.to_fits().writeto(path, overwrite=True)
        return str(path)

    @classmethod
    def load(cls, path) -> "RampTruth":
        """Read a file written by :meth:`save`."""
        from astropy.io import fits
        with fits.open(path) as hdul:
            meta = {k: hdul[0].header[k] for k in hdul[0].header
                    if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "COMMENT", "HISTORY", "")}
            rate = np.array(hdul["RATE_DN"].data, dtype=np.float32)
            sat = np.array(hdul["SATGROUP"].data, dtype=np.int16)
            tab = hdul["COSMICRAYS"].data
            cr = np.zeros(len(tab), dtype=CR_DTYPE)
            for n in CR_DTYPE.names:
                cr[n] = tab[n.upper()]
        return cls(rate_dn=rate, cosmic_rays=cr, saturated_group=sat, meta=meta)


def _seeded(seed, *parts) -> np.random.Generator:
    text = "|".join(str(p) for p in (seed,) + parts).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text).digest()[:8], "little"))


def _onef_rows(rng: np.random.Generator, ny: int, sigma: float) -> np.ndarray:
    """A 1/f (power ~ 1/f) series over ``ny`` rows with rms ``sigma`` DN."""
    freqs = np.fft.rfftfreq(ny)
    amp = np.zeros_like(freqs)
    amp[1:] = 1.0 / np.sqrt(freqs[1:])
    spec = amp * (rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size))
    series = np.fft.irfft(spec, n=ny)
    std = series.std()
    return (series * (sigma / std if std > 0 else 0.0)).astype(np.float32)


def simulate_ramps(detector: str, subarray: Subarray | str, readout: Readout,
                   rate_e: np.ndarray, *, seed: int, cosmic_ray_rate: float = 5e-5,
                   properties_version: int = 1, include: set | None = None,
                   properties_seed: int = 0) -> tuple[np.ndarray, RampTruth]:
    """Simulate raw ramps.

    Parameters
    ----------
    detector : str
        DETECTOR keyword value.
    subarray : Subarray or str
        The readout window (or its name).
    readout : Readout
    rate_e : ndarray, electrons/s
        Count rate over the subarray, ``(ny, nx)`` or ``(nints, ny, nx)``; values on
        reference pixels are ignored.
    seed : int
        Seeds every random draw (same seed -> identical bytes).
    cosmic_ray_rate : float
        Cosmic-ray hits per pixel per second.
    properties_version : int
        Which :func:`detector_properties` version is the truth (1 or 2).
    include : set of str, optional
        Effects to simulate (see the module docstring); None = all of :data:`ALL_EFFECTS`.
    properties_seed : int
        ``seed`` passed to :func:`detector_properties` (0 matches the reference files).

    Returns
    -------
    data : ndarray uint16, (nints, ngroups, ny, nx), DN
    truth : RampTruth
    """
    det = get_detector(detector)
    if isinstance(subarray, str):
        subarray = get_subarray(det.name, subarray)
    effects = ALL_EFFECTS if include is None else frozenset(include)
    unknown = effects - ALL_EFFECTS
    if unknown:
        raise ValueError(f"unknown effects {sorted(unknown)}; known: {sorted(ALL_EFFECTS)}")
    props = detector_properties(det.name, seed=properties_seed, version=properties_version)
    ny, nx = subarray.shape
    nints, ngroups = readout.nints, readout.ngroups
    rate_e = np.asarray(rate_e, dtype=np.float32)
    if rate_e.shape == (ny, nx):
        rate_e = np.broadcast_to(rate_e, (nints, ny, nx))
    if rate_e.shape != (nints, ny, nx):
        raise ValueError(f"rate_e has shape {rate_e.shape}; expected {(ny, nx)} or "
                         f"{(nints, ny, nx)} for {subarray.name} with nints={nints}")
    cut = subarray.cut
    refmask = cut(det.reference_pixel_mask())
    mask_dq = cut(props.dq)
    dead = (mask_dq & 1024) != 0
    hotwarm = (mask_dq & (2048 | 4096)) != 0

    gain = cut(props.sim_gain) if "gain" in effects else np.ones((ny, nx), np.float32)
    dark_dn = cut(props.dark_rate)
    if "badpix" not in effects:
        typical = np.median(props.dark_rate[~det.reference_pixel_mask()])
        dark_dn = np.where(hotwarm, np.float32(typical), dark_dn)
    dark_e = (dark_dn * gain) if "dark" in effects else np.zeros((ny, nx), np.float32)
    sensitive = ~refmask
    if "badpix" in effects:
        sensitive &= ~dead
    bias = cut(props.bias) if "bias" in effects else np.zeros((ny, nx), np.float32)
    rn_frame = cut(props.readnoise_cds) / np.float32(np.sqrt(2.0))
    sat = cut(props.saturation)
    sat_clip = np.where(np.isfinite(sat), sat, np.float32(65535.0)).astype(np.float32)
    coeffs = cut(props.sim_linearity_coeffs)
    lin_offset = props.linearity_offset
    if not np.isscalar(lin_offset):
        lin_offset = cut(lin_offset)

    # geometry for offsets, in the detector's own frame (as the refpix step sees it): the
    # outputs and the even/odd columns run along the fast-read axis, the 1/f term is common to
    # one fast-read line. For |FASTAXIS| == 2 (NIRISS, NIRSpec) the fast axis is the DMS y axis.
    xdet = np.arange(subarray.xstart - 1, subarray.xstart - 1 + nx)
    ydet = np.arange(subarray.ystart - 1, subarray.ystart - 1 + ny)
    fast_is_y = (not det.is_miri) and abs(det.fastaxis) == 2
    fdet, sdet = (ydet, xdet) if fast_is_y else (xdet, ydet)
    nslow_full = det.full_shape[1] if fast_is_y else det.full_shape[0]
    if det.is_miri:
        amp_of_fast = xdet % 4
        # the reference pipeline corrects MIRI drifts on the full frame only (subarrays are
        # skipped): simulate the offsets only where they are removed
        has_ref = subarray.shape == det.full_shape
    else:
        amp_of_fast = (np.minimum(fdet // 512, 3) if subarray.namps == 4
                       else np.zeros(fdet.size, int))
        if subarray.namps == 4:
            # 4 outputs: the offsets come from the reference lines across the fast axis
            has_ref = bool(((sdet < 4) | (sdet >= nslow_full - 4)).any())
        else:
            # 1 output: every reference pixel of the window is pooled
            has_ref = bool(refmask.any())
    parity = fdet % 2
    do_refpix = "refpix" in effects and has_ref
    do_onef = ("onef" in effects and not det.is_miri and subarray.name == "FULL")

    zero2d = np.zeros((ny, nx), np.float32)
    lin_offset2d = (np.broadcast_to(np.float32(lin_offset), (ny, nx)) if np.isscalar(lin_offset)
                    else lin_offset).astype(np.float32)
    clip_level = sat_clip if "saturation" in effects else np.full((ny, nx), 65535.0, np.float32)
    do_nl = "nonlinearity" in effects
    gain = np.ascontiguousarray(gain, dtype=np.float32)
    bias = np.ascontiguousarray(bias, dtype=np.float32)
    rn_frame = np.ascontiguousarray(rn_frame, dtype=np.float32)
    coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
    nframes_int = readout.frames_per_integration
    tframe = readout.tframe
    # frame -> group read index (-1 if not read)
    frame_group = np.full(nframes_int, -1, int)
    for g in range(ngroups):
        frame_group[readout.group_frames(g)] = g
    # first group whose value includes charge arriving in frame f
    first_group_after = np.empty(nframes_int, int)
    for f in range(nframes_int):
        later = [g for g in range(ngroups) if readout.group_frames(g)[-1] >= f]
        first_group_after[f] = later[0]

    data = np.empty((nints, ngroups, ny, nx), dtype=np.uint16)
    satgroup = np.full((nints, ny, nx), -1, dtype=np.int16)
    rate_dn = np.zeros((nints, ny, nx), dtype=np.float32)
    cr_rows = []
    lo, hi = CR_CHARGE_RANGE
    sens_idx = np.flatnonzero(sensitive.ravel())

    for i in range(nints):
        rng = _seeded(seed, "ramps", det.name, subarray.name, i)
        signal_e = np.where(sensitive, rate_e[i], np.float32(0.0)).astype(np.float32)
        rate_dn[i] = np.where(sensitive, rate_e[i] / gain, np.float32(0.0))
        lam = (signal_e + np.where(refmask, 0.0, dark_e).astype(np.float32)) * np.float32(tframe)

        # cosmic rays for this integration
        cr_frame_charge = {}
        if "cosmic_rays" in effects and cosmic_ray_rate > 0 and sens_idx.size:
            expected = cosmic_ray_rate * sens_idx.size * nframes_int * tframe
            n = rng.poisson(expected)
            flat = rng.choice(sens_idx, size=n, replace=True) if n else np.zeros(0, int)
            frames = rng.integers(0, nframes_int, size=n)
            charge = np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))
            ys, xs = np.divmod(flat, nx)
            for k in range(n):
                cr_rows.append((i, first_group_after[frames[k]], frames[k], ys[k], xs[k], charge[k]))
                cr_frame_charge.setdefault(int(frames[k]), []).append((ys[k], xs[k], charge[k]))

        acc = np.zeros((ny, nx), dtype=np.float32)
        gsum = np.zeros((ny, nx), dtype=np.float32)
        pending = 0          # frames integrated but not yet drawn
        for f in range(nframes_int):
            pending += 1
            g = frame_group[f]
            hits = cr_frame_charge.get(f)
            if g < 0 and not hits:
                continue      # skipped frame: draw later, together with the next frames
            if "poisson" in effects:
                acc += rng.poisson(lam * np.float32(pending)).astype(np.float32)
            else:
                acc += lam * np.float32(pending)
            pending = 0
            if hits:
                for (y, x, q) in hits:
                    acc[y, x] += np.float32(q)
            if g < 0:
                continue
            noise = (rng.standard_normal((ny, nx), dtype=np.float32)
                     if "readnoise" in effects else zero2d)
            fastofs = np.zeros(fdet.size, np.float32)
            if do_refpix:
                amp_off = rng.normal(0.0, REFPIX_SIGMA["amplifier"], 4)
                eo_off = rng.normal(0.0, REFPIX_SIGMA["even_odd"], (4, 2))
                fastofs = (amp_off[amp_of_fast] + eo_off[amp_of_fast, parity]).astype(np.float32)
            lineofs = (_onef_rows(rng, sdet.size, ONEF_SIGMA) if do_onef
                       else np.zeros(sdet.size, np.float32))
            colofs, rowofs = (lineofs, fastofs) if fast_is_y else (fastofs, lineofs)
            _finish_frame(acc, gain, coeffs, lin_offset2d, bias, noise, rn_frame, colofs, rowofs,
                          clip_level, do_nl, gsum)
            if f == readout.group_frames(g)[-1]:
                out = np.rint(gsum / np.float32(readout.nframes))
                np.clip(out, 0, 65535, out=out)
                data[i, g] = out.astype(np.uint16)
                gsum[...] = 0.0

        # saturation truth from the stored values
        with np.errstate(invalid="ignore"):
            above = data[i].astype(np.float32) >= sat[None, :, :]
        any_sat = above.any(axis=0)
        first = np.argmax(above, axis=0).astype(np.int16)
        satgroup[i] = np.where(any_sat, first, np.int16(-1))

    cr = np.array(cr_rows, dtype=CR_DTYPE) if cr_rows else np.zeros(0, dtype=CR_DTYPE)
    meta = {"DETECTOR": det.name, "SUBARRAY": subarray.name, "SUBSTRT1": subarray.xstart,
            "SUBSTRT2": subarray.ystart, "SUBSIZE1": subarray.xsize, "SUBSIZE2": subarray.ysize,
            "READPATT": readout.readpatt, "NINTS": nints, "NGROUPS": ngroups,
            "NFRAMES": readout.nframes, "GROUPGAP": readout.groupgap,
            "DRPFRMS1": readout.drop_frames1, "TFRAME": readout.tframe, "TGROUP": readout.tgroup,
            "SEED": int(seed), "PROPVER": int(properties_version), "PROPSEED": int(properties_seed),
            "CRRATE": float(cosmic_ray_rate), "EFFECTS": ",".join(sorted(effects))}
    return data, RampTruth(rate_dn=rate_dn, cosmic_rays=cr, saturated_group=satgroup, meta=meta)


@numba.njit(parallel=True, cache=True)
def _finish_frame(acc, gain, coeffs, offset, bias, noise, rn, colofs, rowofs, clip_level,
                  do_nl, gsum):
    """Electrons -> non-linear DN + bias + noise + offsets, clipped; added into ``gsum``.

    The non-linearity solves ``sum_k c_k (o + m)**k = o + s`` for ``m`` by Newton's method
    (float64, 8 iterations from ``m = s``; the correction is increasing and convex, so the
    iteration decreases monotonically onto the root). Linear signals are capped at 2e5 DN,
    far above any saturation level.
    """
    ny, nx = acc.shape
    nc = coeffs.shape[0]
    for y in numba.prange(ny):
        for x in range(nx):
            s = acc[y, x] / gain[y, x]
            if do_nl:
                s = min(s, 2.0e5)
                o = np.float64(offset[y, x])
                target = o + s
                m = s
                for _ in range(8):
                    t = o + m
                    val = np.float64(coeffs[nc - 1, y, x])
                    der = 0.0
                    for k in range(nc - 2, -1, -1):
                        der = der * t + val
                        val = val * t + coeffs[k, y, x]
                    if der <= 0.0:
                        break
                    step = (val - target) / der
                    m -= step
                    if abs(step) < 1e-7 * (1.0 + abs(m)):
                        break
                s = m
            v = s + bias[y, x] + noise[y, x] * rn[y, x] + colofs[x] + rowofs[y]
            c = clip_level[y, x]
            if v > c:
                v = c
            if v < 0.0:
                v = 0.0
            elif v > 65535.0:
                v = 65535.0
            gsum[y, x] += v
