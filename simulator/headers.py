"""Archive-style header keywords, file names and time tables for simulated exposures.

:class:`ExposureSpec` describes one exposure; :func:`primary_cards` and :func:`sci_cards`
give the keywords of the PRIMARY and SCI headers (where the archive and stdatamodels put
them: the pointing / WCS keywords RA_V1, DEC_V1, PA_V3, V2_REF, V3_REF, VPARITY, V3I_YANG,
RA_REF, DEC_REF, ROLL_REF, XREF_SCI, YREF_SCI and the basic TAN WCS live in SCI);
:func:`int_times_table` and :func:`group_table` the INT_TIMES and GROUP tables.

Timing model
------------
EXPSTART is the first frame after the NRSTSTRT initial resets. Integration ``k`` (0-based)
starts at ``EXPSTART + k * (F + NRESETS) * TFRAME`` and ends ``F * TFRAME`` later, with
``F`` the frames of an integration (:attr:`Readout.frames_per_integration`); its mid-time is
the average. EXPEND is the end of the last integration; DURATION is
``(NRSTSTRT + nints * F + (nints - 1) * NRESETS) * TFRAME``. BJD_TDB columns of INT_TIMES are
in MJD form: ``MJD_UTC + (69.184 s TT-UTC) + BARTDELT`` with a fixed, documented barycentric
correction ``BARTDELT`` (s) per exposure. GROUP table end times are the time of the last frame
of each group (``end_day``: days since 2000-01-01, ``end_milliseconds`` into that day,
``end_submilliseconds``: the remaining microseconds).

WCS
---
The pointing and the pixel grid agree with the stage-2 geometry of
:mod:`simulator.stage2_references` (the DISTORTION reference plus the JWST attitude
rotation): V2_REF, V3_REF are the V2V3 (arcsec) of the reference pixel ``(XREF_SCI,
YREF_SCI)`` (1-based) under the detector's distortion
(:func:`simulator.stage2_references.reference_point_v2v3`, as SIAF apertures are defined), so
that the reference pixel looks at ``(RA_REF, DEC_REF)``. :attr:`ExposureSpec.v2v3_ref` gives
them, :func:`pointing` the five pointing keywords, :func:`pixel_to_world` /
:func:`world_to_pixel` the exact (distorted) pixel <-> sky mapping.

The basic SCI-header WCS (:func:`tan_wcs`) is the TAN projection on ``(RA_REF, DEC_REF)`` at
the reference pixel whose linear part is the local Jacobian of that exact mapping at the
reference pixel: ``CDELT = pixel_scale / 3600`` and ``PC = J / CDELT`` (``J`` the
derivative of the gnomonic coordinates of the sky position, deg, with respect to the pixel
coordinates; for an undistorted detector it is jwst's ``calc_rotation_matrix(ROLL_REF,
V3I_YANG, VPARITY)``: with ``a = ROLL_REF - VPARITY * V3I_YANG``, ``PC1_1 = VPARITY cos a,
PC1_2 = sin a, PC2_1 = -VPARITY sin a, PC2_2 = cos a``). It omits the higher-order distortion
(a few hundredths of a pixel over a 64-pixel subarray, more over larger ones); assign_wcs
replaces it.

RA_V1/DEC_V1 are the V1 axis placed at ``(-V2_REF, -V3_REF)`` arcsec from the reference
point (V3 at position angle ROLL_REF, V2 at ROLL_REF + 90 deg); PA_V3 = ROLL_REF (the
convergence of meridians over the few arcminutes is neglected).

Header comments are at most 47 characters, so that no card (8-character keyword, 20-column
value) needs truncating.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

import numpy as np

from .detectors import Subarray
from .ramps import Readout

__all__ = ["ExposureSpec", "INSTRUMENT_APERTURES", "PIXEL_SCALES", "rootname", "filename",
           "primary_cards", "sci_cards", "int_times_table", "group_table", "integration_times",
           "tan_wcs", "pixel_to_sky", "pointing", "pixel_to_world", "world_to_pixel",
           "mjd_to_datetime", "TT_MINUS_UTC_S"]

TT_MINUS_UTC_S = 69.184
_MJD0 = _dt.datetime(1858, 11, 17)

#: pixel scales (arcsec/pixel)
PIXEL_SCALES = {"NRCA1": 0.031, "NRCA2": 0.031, "NRCA3": 0.031, "NRCA4": 0.031,
                "NRCB1": 0.031, "NRCB2": 0.031, "NRCB3": 0.031, "NRCB4": 0.031,
                "NRCALONG": 0.063, "NRCBLONG": 0.063, "NIS": 0.0656, "MIRIMAGE": 0.11,
                "NRS1": 0.1, "NRS2": 0.1}

#: representative (V2_REF, V3_REF arcsec, V3I_YANG deg, VPARITY) per detector
INSTRUMENT_APERTURES = {
    "NRCA1": (120.67, -527.54, -0.55, -1), "NRCB1": (-120.67, -527.54, -0.45, -1),
    "NRCA3": (51.93, -527.40, -0.48, -1),
    "NRCALONG": (86.10, -493.23, -0.57, -1), "NRCBLONG": (-89.27, -493.73, -0.25, -1),
    "NIS": (-290.10, -697.50, -0.57, -1), "MIRIMAGE": (-453.56, -373.81, 4.45, -1),
}


@dataclass
class ExposureSpec:
    """Everything the headers of one exposure need.

    Attributes are FITS keyword values in natural units (deg, arcsec, MJD, s).
    ``dither`` holds PATTTYPE, PATT_NUM, NUMDTHPT, XOFFSET, YOFFSET (arcsec) when used;
    ``extra_primary`` / ``extra_sci`` are added verbatim.
    """

    instrument: str
    detector: str
    exp_type: str
    filter: str
    pupil: str | None
    subarray: Subarray
    readout: Readout
    grating: str | None = None
    coronmsk: str | None = None
    program: int = 1234
    observation: int = 1
    visit: int = 1
    visit_group: int = 1
    seq_id: int = 1
    act_id: int = 1
    exposure: int = 1
    targname: str = "SIM-TARGET"
    targ_ra: float = 80.0
    targ_dec: float = -69.5
    ra_ref: float = 80.0
    dec_ref: float = -69.5
    roll_ref: float = 0.0
    xref_sci: float | None = None
    yref_sci: float | None = None
    expstart: float = 60200.0
    tsovisit: bool = False
    nrststrt: int = 1
    nresets: int = 1
    bartdelt: float = 123.456
    dither: dict = field(default_factory=dict)
    is_psf: bool = False
    extra_primary: dict = field(default_factory=dict)
    extra_sci: dict = field(default_factory=dict)

    @property
    def pixel_scale(self) -> float:
        """arcsec / pixel."""
        return PIXEL_SCALES.get(self.detector, 0.1)

    @property
    def crpix(self):
        """1-based reference pixel (XREF_SCI, YREF_SCI): the window centre by default."""
        x = self.xref_sci if self.xref_sci is not None else (self.subarray.xsize + 1) / 2.0
        y = self.yref_sci if self.yref_sci is not None else (self.subarray.ysize + 1) / 2.0
        return float(x), float(y)

    @property
    def aperture(self):
        """(V2, V3, V3I_YANG, VPARITY) of the detector's full-frame aperture (its centre)."""
        return INSTRUMENT_APERTURES.get(self.detector, (0.0, -500.0, 0.0, -1))

    @property
    def v2v3_ref(self):
        """(V2_REF, V3_REF) arcsec: the V2V3 of the reference pixel :attr:`crpix` of this
        subarray under the detector's distortion (see the module docstring)."""
        from . import stage2_references as S2
        return S2.reference_point_v2v3(self.detector, self.subarray, *self.crpix)


def rootname(spec: ExposureSpec) -> str:
    """``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>``."""
    return (f"jw{spec.program:05d}{spec.observation:03d}{spec.visit:03d}_"
            f"{spec.visit_group:02d}{spec.seq_id:1d}{spec.act_id:02d}_{spec.exposure:05d}_"
            f"{spec.detector.lower()}")


def filename(spec: ExposureSpec, suffix: str = "uncal") -> str:
    """``<rootname>_<suffix>.fits``."""
    return f"{rootname(spec)}_{suffix}.fits"


def mjd_to_datetime(mjd: float) -> _dt.datetime:
    """UTC datetime of an MJD."""
    return _MJD0 + _dt.timedelta(days=float(mjd))


def integration_times(spec: ExposureSpec):
    """Start, mid and end MJD (UTC) of every integration.

    Returns
    -------
    start, mid, end : ndarray float64 (nints,)
    """
    r = spec.readout
    f = r.frames_per_integration
    k = np.arange(r.nints)
    start = spec.expstart + k * (f + spec.nresets) * r.tframe / 86400.0
    end = start + f * r.tframe / 86400.0
    return start, 0.5 * (start + end), end


def _exposure_times(spec: ExposureSpec):
    r = spec.readout
    start, _, end = integration_times(spec)
    f = r.frames_per_integration
    duration = (spec.nrststrt + r.nints * f + (r.nints - 1) * spec.nresets) * r.tframe
    return float(start[0]), float(0.5 * (start[0] + end[-1])), float(end[-1]), duration


def pointing(spec: ExposureSpec) -> dict:
    """The pointing keywords V2_REF, V3_REF (arcsec), ROLL_REF, RA_REF, DEC_REF (deg).

    The mapping :func:`simulator.stage2_references.detector_to_world` and
    :func:`~simulator.stage2_references.world_to_detector` take as ``header``.
    """
    v2, v3 = spec.v2v3_ref
    return {"V2_REF": v2, "V3_REF": v3, "ROLL_REF": float(spec.roll_ref),
            "RA_REF": float(spec.ra_ref), "DEC_REF": float(spec.dec_ref)}


def pixel_to_world(spec: ExposureSpec, x, y):
    """RA, Dec (deg) of 0-based subarray pixels through the distortion and the pointing.

    What assign_wcs computes from the DISTORTION reference and the header keywords.
    """
    from . import stage2_references as S2
    return S2.detector_to_world(spec.detector, spec.subarray, pointing(spec), x, y)


def world_to_pixel(spec: ExposureSpec, ra, dec):
    """0-based subarray pixel ``(x, y)`` of RA, Dec (deg); inverse of :func:`pixel_to_world`."""
    from . import stage2_references as S2
    return S2.world_to_detector(spec.detector, spec.subarray, pointing(spec), ra, dec)


def _gnomonic(ra, dec, ra0, dec0):
    """Gnomonic (TAN) coordinates (deg) of RA, Dec (deg) about (ra0, dec0)."""
    ra, dec = np.radians(ra), np.radians(dec)
    a0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = math.sin(d0) * np.sin(dec) + math.cos(d0) * np.cos(dec) * np.cos(ra - a0)
    xi = np.cos(dec) * np.sin(ra - a0) / cosc
    eta = (math.cos(d0) * np.sin(dec) - math.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cosc
    return np.degrees(xi), np.degrees(eta)


def tan_wcs(spec: ExposureSpec) -> dict:
    """The SCI-header TAN WCS keywords: the distortion linearised at the reference pixel.

    See the module docstring. ``CDELT = pixel_scale / 3600`` and ``PC`` the local Jacobian of
    the exact pixel -> sky mapping at the reference pixel divided by ``CDELT``.
    """
    cdelt = spec.pixel_scale / 3600.0
    cx, cy = spec.crpix
    h = 0.5
    x = np.array([cx - 1 + h, cx - 1 - h, cx - 1, cx - 1])
    y = np.array([cy - 1, cy - 1, cy - 1 + h, cy - 1 - h])
    ra, dec = pixel_to_world(spec, x, y)
    xi, eta = _gnomonic(ra, dec, spec.ra_ref, spec.dec_ref)
    pc = np.array([[xi[0] - xi[1], xi[2] - xi[3]],
                   [eta[0] - eta[1], eta[2] - eta[3]]]) / (2 * h) / cdelt
    return {"WCSAXES": 2, "CRPIX1": cx, "CRPIX2": cy, "CRVAL1": spec.ra_ref,
            "CRVAL2": spec.dec_ref, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
            "CUNIT1": "deg", "CUNIT2": "deg", "CDELT1": cdelt, "CDELT2": cdelt,
            "PC1_1": float(pc[0, 0]), "PC1_2": float(pc[0, 1]),
            "PC2_1": float(pc[1, 0]), "PC2_2": float(pc[1, 1])}


def pixel_to_sky(spec: ExposureSpec, x, y):
    """RA, Dec (deg) of 0-based pixel positions through the TAN header WCS :func:`tan_wcs`.

    An approximation (no higher-order distortion); :func:`pixel_to_world` is exact.
    """
    from astropy.wcs import WCS
    w = WCS(tan_wcs(spec))
    ra, dec = w.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return ra, dec


def _v1_pointing(spec: ExposureSpec):
    v2, v3 = spec.v2v3_ref
    sep = math.hypot(v2, v3) / 3600.0
    if sep == 0:
        return spec.ra_ref, spec.dec_ref
    pa = math.radians(spec.roll_ref) + math.atan2(-v2, -v3)
    d0, r0 = math.radians(spec.dec_ref), math.radians(spec.ra_ref)
    s = math.radians(sep)
    dec = math.asin(math.sin(d0) * math.cos(s) + math.cos(d0) * math.sin(s) * math.cos(pa))
    ra = r0 + math.atan2(math.sin(pa) * math.sin(s) * math.cos(d0),
                         math.cos(s) - math.sin(d0) * math.sin(dec))
    return math.degrees(ra) % 360.0, math.degrees(dec)


def primary_cards(spec: ExposureSpec, *, fname: str | None = None,
                  date: str = "2026-01-01T00:00:00.000") -> list:
    """PRIMARY header cards ``(keyword, value, comment)`` in archive order.

    Parameters
    ----------
    spec : ExposureSpec
    fname : str, optional
        FILENAME (default :func:`filename`).
    date : str
        DATE (file creation); fixed by default so files are byte-reproducible.
    """
    r = spec.readout
    sub = spec.subarray
    t0, tmid, t1, duration = _exposure_times(spec)
    dt0 = mjd_to_datetime(t0)
    obs_id = (f"V{spec.program:05d}{spec.observation:03d}{spec.visit:03d}"
              f"{spec.visit_group:02d}{spec.seq_id:1d}{spec.act_id:02d}{spec.exposure:05d}")
    cards = [
        ("DATE", date, "UTC date file created"),
        ("ORIGIN", "STSCI", "Organization responsible for creating file"),
        ("TIMESYS", "UTC", "principal time system for time-related keywords"),
        ("TIMEUNIT", "d", "Default unit applicable to all time values"),
        ("FILENAME", fname or filename(spec), "Name of the file"),
        ("FILETYPE", "uncalibrated", "Type of data in the file"),
        ("DATAMODL", "Level1bModel", "Type of data model"),
        ("TELESCOP", "JWST", "Telescope used to acquire the data"),
        ("SDP_VER", "webbcal-sim", "Data processing software version number"),
        ("", "", ""),
        ("PROGRAM", f"{spec.program:05d}", "JWST program number"),
        ("OBSERVTN", f"{spec.observation:03d}", "Observation number"),
        ("VISIT", f"{spec.visit:03d}", "Visit number"),
        ("VISITGRP", f"{spec.visit_group:02d}", "Visit group identifier"),
        ("SEQ_ID", f"{spec.seq_id:1d}", "Parallel sequence identifier"),
        ("ACT_ID", f"{spec.act_id:02d}", "Activity identifier"),
        ("EXPOSURE", f"{spec.exposure:05d}", "Exposure request number"),
        ("OBS_ID", obs_id, "Programmatic observation identifier"),
        ("VISIT_ID", f"{spec.program:05d}{spec.observation:03d}{spec.visit:03d}",
         "Visit identifier"),
        ("DATE-OBS", dt0.strftime("%Y-%m-%d"), "[yyyy-mm-dd] UTC date at start of exposure"),
        ("TIME-OBS", dt0.strftime("%H:%M:%S.%f")[:12], "[hh:mm:ss.sss] UTC time at start of exposure"),
        ("TSOVISIT", bool(spec.tsovisit), "Time Series Observation visit indicator"),
        ("VISITYPE", "PRIME_TARGETED_FIXED", "Visit type"),
        ("TARGPROP", spec.targname, "Proposer's name for the target"),
        ("TARGNAME", spec.targname, "Standard astronomical catalog name for target"),
        ("TARG_RA", spec.targ_ra, "Target RA at mid time of exposure"),
        ("TARG_DEC", spec.targ_dec, "Target Dec at mid time of exposure"),
        ("SRCTYAPT", "POINT", "Source type from APT"),
        ("INSTRUME", spec.instrument, "Instrument used to acquire the data"),
        ("DETECTOR", spec.detector, "Name of detector used to acquire the data"),
        ("FILTER", spec.filter, "Name of the filter element used"),
    ]
    if spec.pupil is not None:
        cards.append(("PUPIL", spec.pupil, "Name of the pupil element used"))
    if spec.grating is not None:
        cards.append(("GRATING", spec.grating, "Name of the grating element used"))
    if spec.coronmsk is not None:
        cards.append(("CORONMSK", spec.coronmsk, "Coronagraph mask used"))
    if spec.instrument == "NIRCAM":
        cards.append(("MODULE", "A" if spec.detector.startswith("NRCA") else "B",
                      "NIRCam module: A or B"))
        cards.append(("CHANNEL", "LONG" if spec.detector.endswith("LONG") else "SHORT",
                      "Instrument channel"))
    cards += [
        ("EXP_TYPE", spec.exp_type, "Type of data in the exposure"),
        ("EXPSTART", t0, "UTC exposure start time (MJD)"),
        ("EXPMID", tmid, "UTC exposure mid time (MJD)"),
        ("EXPEND", t1, "UTC exposure end time (MJD)"),
        ("READPATT", r.readpatt, "Readout pattern"),
        ("NOUTPUTS", sub.namps, "Number of detector outputs used"),
        ("NINTS", r.nints, "Number of integrations in exposure"),
        ("INTSTART", 1, "Starting integration number in this segment"),
        ("INTEND", r.nints, "Ending integration number in this segment"),
        ("NGROUPS", r.ngroups, "Number of groups in integration"),
        ("NFRAMES", r.nframes, "Number of frames per group"),
        ("GROUPGAP", r.groupgap, "Number of frames dropped between groups"),
        ("NSAMPLES", 1, "Number of A/D samples per pixel"),
        ("TSAMPLE", 10.0, "[us] Time between samples"),
        ("TFRAME", r.tframe, "[s] Time between frames"),
        ("TGROUP", r.tgroup, "[s] Time between groups"),
        ("EFFINTTM", r.effinttm, "[s] Effective integration time"),
        ("EFFEXPTM", r.effexptm, "[s] Effective exposure time"),
        ("DURATION", duration, "[s] Total duration of exposure"),
        ("NRSTSTRT", spec.nrststrt, "Number of resets at start of exposure"),
        ("NRESETS", spec.nresets, "Number of resets between integrations"),
        ("ZEROFRAM", False, "T if a zero frame was read separately"),
        ("DATAPROB", False, "Science telemetry indicated a problem"),
        ("FRMDIVSR", r.frmdivsr, "Divisor applied to frame-averaged groups"),
        ("DRPFRMS1", r.drop_frames1, "Frames dropped before the first integration"),
        ("DRPFRMS3", 0, "Number of frames dropped between integrations"),
        ("IS_PSF", bool(spec.is_psf), "Is this a PSF reference exposure"),
        ("SUBARRAY", sub.name, "Subarray used"),
        ("SUBSTRT1", sub.xstart, "Starting pixel in axis 1 direction"),
        ("SUBSTRT2", sub.ystart, "Starting pixel in axis 2 direction"),
        ("SUBSIZE1", sub.xsize, "Number of pixels in axis 1 direction"),
        ("SUBSIZE2", sub.ysize, "Number of pixels in axis 2 direction"),
        ("FASTAXIS", sub.fastaxis, "Fast readout axis direction"),
        ("SLOWAXIS", sub.slowaxis, "Slow readout axis direction"),
    ]
    d = spec.dither
    if d:
        cards += [
            ("PATTTYPE", d.get("PATTTYPE", "NONE"), "Primary dither pattern type"),
            ("PATT_NUM", int(d.get("PATT_NUM", 1)), "Position number in primary pattern"),
            ("NUMDTHPT", int(d.get("NUMDTHPT", 1)), "Total number of points in pattern"),
            ("PATTSTRT", 1, "Starting point in pattern"),
            ("XOFFSET", float(d.get("XOFFSET", 0.0)), "x offset from pattern starting position"),
            ("YOFFSET", float(d.get("YOFFSET", 0.0)), "y offset from pattern starting position"),
        ]
        if "NOD_TYPE" in d:
            cards.append(("NOD_TYPE", d["NOD_TYPE"], "Nod pattern type"))
    cards += [
        ("BARTDELT", spec.bartdelt, "[s] Barycentric time correction"),
        ("BSTRTIME", t0 + (TT_MINUS_UTC_S + spec.bartdelt) / 86400.0,
         "Barycentric exposure start time (MJD, TDB)"),
        ("BENDTIME", t1 + (TT_MINUS_UTC_S + spec.bartdelt) / 86400.0,
         "Barycentric exposure end time (MJD, TDB)"),
        ("BMIDTIME", tmid + (TT_MINUS_UTC_S + spec.bartdelt) / 86400.0,
         "Barycentric exposure mid time (MJD, TDB)"),
    ]
    for k, v in spec.extra_primary.items():
        cards.append((k, v, ""))
    return cards


def sci_cards(spec: ExposureSpec) -> list:
    """SCI-extension header cards (pointing, WCS, exposure times in MJD-BEG/AVG/END).

    V2_REF, V3_REF are :attr:`ExposureSpec.v2v3_ref` (the reference pixel's V2V3 for this
    subarray), not the detector's full-frame aperture.
    """
    _, _, yang, vpar = spec.aperture
    v2, v3 = spec.v2v3_ref
    ra_v1, dec_v1 = _v1_pointing(spec)
    t0, tmid, t1, duration = _exposure_times(spec)
    cx, cy = spec.crpix
    cards = [
        ("BUNIT", "DN", "physical units of the array values"),
        ("MJD-BEG", t0, "[d] exposure start time in MJD"),
        ("MJD-AVG", tmid, "[d] exposure mid time in MJD"),
        ("MJD-END", t1, "[d] exposure end time in MJD"),
        ("XPOSURE", spec.readout.effexptm, "[s] Effective exposure time"),
        ("TELAPSE", duration, "[s] Total duration of exposure"),
        ("RADESYS", "ICRS", "Name of the coordinate reference frame"),
        ("RA_V1", ra_v1, "[deg] RA of telescope V1 axis"),
        ("DEC_V1", dec_v1, "[deg] Dec of telescope V1 axis"),
        ("PA_V3", spec.roll_ref, "[deg] Position angle of telescope V3 axis"),
    ]
    cards += [(k, v, "") for k, v in tan_wcs(spec).items()]
    cards += [
        ("V2_REF", v2, "[arcsec] V2 of the reference point"),
        ("V3_REF", v3, "[arcsec] V3 of the reference point"),
        ("VPARITY", vpar, "Sense of rotation between Ideal xy and V2V3"),
        ("V3I_YANG", yang, "[deg] Angle from V3 axis to Ideal y axis"),
        ("RA_REF", spec.ra_ref, "[deg] Right ascension of the reference point"),
        ("DEC_REF", spec.dec_ref, "[deg] Declination of the reference point"),
        ("ROLL_REF", spec.roll_ref, "[deg] V3 roll angle at the ref point (N over E)"),
        ("XREF_SCI", cx, "Aperture X reference point in SCI frame"),
        ("YREF_SCI", cy, "Aperture Y reference point in SCI frame"),
    ]
    for k, v in spec.extra_sci.items():
        cards.append((k, v, ""))
    return cards


INT_TIMES_DTYPE = np.dtype([
    ("integration_number", ">i4"), ("int_start_MJD_UTC", ">f8"), ("int_mid_MJD_UTC", ">f8"),
    ("int_end_MJD_UTC", ">f8"), ("int_start_BJD_TDB", ">f8"), ("int_mid_BJD_TDB", ">f8"),
    ("int_end_BJD_TDB", ">f8")])

GROUP_DTYPE = np.dtype([
    ("integration_number", ">i4"), ("group_number", ">i2"), ("end_day", ">i2"),
    ("end_milliseconds", ">i4"), ("end_submilliseconds", ">i2"), ("group_end_time", "S26"),
    ("number_of_columns", ">i2"), ("number_of_rows", ">i2"), ("number_of_gaps", ">i2"),
    ("completion_code_number", ">i2"), ("completion_code_text", "S36"),
    ("bary_end_time", ">f8"), ("helio_end_time", ">f8")])


def int_times_table(spec: ExposureSpec) -> np.ndarray:
    """INT_TIMES rows (structured array, jwst column names; BJD_TDB in MJD form)."""
    start, mid, end = integration_times(spec)
    off = (TT_MINUS_UTC_S + spec.bartdelt) / 86400.0
    tab = np.zeros(len(start), dtype=INT_TIMES_DTYPE)
    tab["integration_number"] = np.arange(1, len(start) + 1)
    tab["int_start_MJD_UTC"] = start
    tab["int_mid_MJD_UTC"] = mid
    tab["int_end_MJD_UTC"] = end
    tab["int_start_BJD_TDB"] = start + off
    tab["int_mid_BJD_TDB"] = mid + off
    tab["int_end_BJD_TDB"] = end + off
    return tab


def group_table(spec: ExposureSpec) -> np.ndarray:
    """GROUP rows, one per (integration, group), end times of each group's last frame."""
    r = spec.readout
    start, _, _ = integration_times(spec)
    n = r.nints * r.ngroups
    tab = np.zeros(n, dtype=GROUP_DTYPE)
    epoch = _dt.datetime(2000, 1, 1)
    off = (TT_MINUS_UTC_S + spec.bartdelt) / 86400.0
    i = 0
    for k in range(r.nints):
        for g in range(r.ngroups):
            last = int(r.group_frames(g)[-1])
            mjd = start[k] + (last + 1) * r.tframe / 86400.0
            t = mjd_to_datetime(mjd)
            delta = t - epoch
            us_of_day = delta.seconds * 1_000_000 + delta.microseconds
            tab[i] = (k + 1, g + 1, delta.days, us_of_day // 1000, us_of_day % 1000,
                      t.strftime("%Y-%m-%dT%H:%M:%S.%f").encode(), spec.subarray.xsize,
                      spec.subarray.ysize, 0, 0, b"COMPLETE", mjd + off, mjd + off)
            i += 1
    return tab
