"""Every observing mode as a set of simulated exposures, associations and truth.

``simulate(mode, outdir, size='tiny', seed=0)`` writes the ``_uncal.fits`` files of one mode
(with ``_truth.json`` and ``_ramptruth.fits`` beside each, see :mod:`simulator.uncal`) and its
association files (:mod:`simulator.associations`), and returns a :class:`SimulatedSet`.

Modes (:data:`MODES`)
---------------------
==================  ========  ==============  =========================  =====================  ========================
mode                detector  EXP_TYPE        FILTER / PUPIL             subarray tiny/demo/    exposures
                                                                         full
==================  ========  ==============  =========================  =====================  ========================
nircam_image        NRCA1     NRC_IMAGE       F200W / CLEAR              SUB64P/SUB400P/FULL    3 (full: 4) dithers
nircam_tso_image    NRCA3     NRC_TSIMAGE     F210M / CLEAR              SUB64P/SUB160P/SUB160P 1, 20/100/1000 ints
miri_lrs_slit       MIRIMAGE  MIR_LRS-        P750L                      SUB64/FULL/FULL        2 nods along the slit
                              FIXEDSLIT
nircam_tso_grism    NRCALONG  NRC_TSGRISM     F322W2 / GRISMR            SUBGRISM64             1, 8/50/300 ints
nircam_coron        NRCALONG  NRC_CORON       F444W / MASKRND,           SUB320A335R (full:     science + PSF reference
                                              CORONMSK MASKA335R         FULL)
niriss_ami          NIS       NIS_AMI         F480M / NRM                SUB80                  binary + calibrator
miri_image          MIRIMAGE  MIR_IMAGE       F770W                      SUB64/SUB256/FULL      2 (full: 4) dithers
==================  ========  ==============  =========================  =====================  ========================

Consistency with stage 2
------------------------
Every exposure is what the stage-2 references of :mod:`simulator.stage2_references` describe:

* pointing: V2_REF/V3_REF are the reference pixel's V2V3 for the subarray
  (:attr:`simulator.headers.ExposureSpec.v2v3_ref`);
* geometry: imaging sources get their RA/Dec from the first dither's pixel positions through
  the DISTORTION model and the pointing (:func:`simulator.stage2_references.detector_to_world`);
  in dither ``k`` they are placed at ``world_to_detector`` of that RA/Dec for dither ``k``'s
  pointing (so assign_wcs maps the truth RA/Dec to the truth pixel, to < 1e-6 pixel);
* pixel response: the scene (e/s) is multiplied by
  :func:`simulator.stage2_references.qe_response` (detector, subarray, FILTER) before the
  ramps are simulated (every mode), so the FLAT reference (``qe * nominal_gain / gain``)
  recovers ``scene / nominal_gain``; the ``RampTruth`` (``rate_dn``) therefore includes the
  QE: it is what detector1 measures. The scene truth (``truth['scene']``) is the incident
  scene, before QE; ``truth['pixel_response']`` says what was applied;
* flux: every imaging truth source (and the TSO star) carries ``flux_jy``, its incident
  flux in e/s times :func:`simulator.stage2_references.rate_e_to_jy` (what a perfect
  calibration recovers: sum of the calibrated MJy/sr pixels times ``PIXAR_SR * 1e6``).

Notes: the 'tiny' MIRI LRS exposures use the SUB64 window (not an LRS configuration, for
speed); time-series orbits are time-compressed (the period is scaled so that the transit
lasts ~60 % of the exposure). Star brightnesses are chosen so that the brightest pixel stays
well below saturation in the last group. All randomness derives from ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import associations as A
from . import headers as H
from . import scenes as S
from . import stage2_references as S2
from .detectors import detector_properties, get_subarray
from .ramps import Readout, readout_for
from .uncal import simulate_exposure

__all__ = ["SimulatedSet", "MODES", "SIZES", "simulate", "demo_set", "configurations"]

SIZES = ("tiny", "demo", "full")


@dataclass
class SimulatedSet:
    """The files one :func:`simulate` call wrote.

    Attributes
    ----------
    mode : str
    size : str
    exposures : list of str
        ``_uncal.fits`` paths.
    associations : list of str
        Association JSON paths.
    truths : list of str
        ``_truth.json`` paths (same order as ``exposures``).
    ramp_truths : list of str
        ``_ramptruth.fits`` paths.
    configs : list of (detector, subarray name, Readout)
    """

    mode: str
    size: str
    exposures: list = field(default_factory=list)
    associations: list = field(default_factory=list)
    truths: list = field(default_factory=list)
    ramp_truths: list = field(default_factory=list)
    configs: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# configuration table
# ---------------------------------------------------------------------------------------

#: mode -> static description and per-size (subarray, readpatt, ngroups, nints, extra)
MODES = {
    "nircam_image": {
        "instrument": "NIRCAM", "detector": "NRCA1", "exp_type": "NRC_IMAGE",
        "filter": "F200W", "pupil": "CLEAR", "wavelength_um": 2.0,
        "sizes": {"tiny": ("SUB64P", "RAPID", 5, 1, {"n_stars": 6, "ndither": 3}),
                  "demo": ("SUB400P", "BRIGHT2", 6, 1, {"n_stars": 40, "ndither": 3}),
                  "full": ("FULL", "MEDIUM8", 8, 1, {"n_stars": 400, "ndither": 4})},
    },
    "nircam_tso_image": {
        "instrument": "NIRCAM", "detector": "NRCA3", "exp_type": "NRC_TSIMAGE",
        "filter": "F210M", "pupil": "CLEAR", "wavelength_um": 2.1,
        "sizes": {"tiny": ("SUB64P", "RAPID", 3, 20, {}),
                  "demo": ("SUB160P", "RAPID", 5, 100, {}),
                  "full": ("SUB160P", "RAPID", 8, 1000, {})},
    },
    "miri_lrs_slit": {
        "instrument": "MIRI", "detector": "MIRIMAGE", "exp_type": "MIR_LRS-FIXEDSLIT",
        "filter": "P750L", "pupil": None, "wavelength_um": 7.5,
        "sizes": {"tiny": ("SUB64", "FAST", 5, 1, {}),
                  "demo": ("FULL", "FAST", 6, 1, {}),
                  "full": ("FULL", "FAST", 20, 2, {})},
    },
    "nircam_tso_grism": {
        "instrument": "NIRCAM", "detector": "NRCALONG", "exp_type": "NRC_TSGRISM",
        "filter": "F322W2", "pupil": "GRISMR", "wavelength_um": 3.2,
        "sizes": {"tiny": ("SUBGRISM64", "RAPID", 3, 8, {}),
                  "demo": ("SUBGRISM64", "RAPID", 5, 50, {}),
                  "full": ("SUBGRISM64", "RAPID", 6, 300, {})},
    },
    "nircam_coron": {
        "instrument": "NIRCAM", "detector": "NRCALONG", "exp_type": "NRC_CORON",
        "filter": "F444W", "pupil": "MASKRND", "coronmsk": "MASKA335R", "wavelength_um": 4.44,
        "sizes": {"tiny": ("SUB320A335R", "RAPID", 4, 1, {}),
                  "demo": ("SUB320A335R", "BRIGHT2", 6, 2, {}),
                  "full": ("FULL", "MEDIUM8", 8, 2, {})},
    },
    "niriss_ami": {
        "instrument": "NIRISS", "detector": "NIS", "exp_type": "NIS_AMI",
        "filter": "F480M", "pupil": "NRM", "wavelength_um": 4.8,
        "sizes": {"tiny": ("SUB80", "NISRAPID", 5, 2, {"nfft": 513}),
                  "demo": ("SUB80", "NISRAPID", 8, 5, {"nfft": 1023}),
                  "full": ("SUB80", "NISRAPID", 12, 50, {"nfft": 1023})},
    },
    "miri_image": {
        "instrument": "MIRI", "detector": "MIRIMAGE", "exp_type": "MIR_IMAGE",
        "filter": "F770W", "pupil": None, "wavelength_um": 7.7,
        "sizes": {"tiny": ("SUB64", "FAST", 5, 1, {"n_stars": 5, "ndither": 2}),
                  "demo": ("SUB256", "FAST", 8, 1, {"n_stars": 25, "ndither": 2}),
                  "full": ("FULL", "FAST", 20, 1, {"n_stars": 200, "ndither": 4})},
    },
}

_PROGRAM = 1234
_TARGETS = {  # (name, ra, dec)
    "nircam_image": ("NGC-SIM-FIELD", 53.16, -27.78),
    "nircam_tso_image": ("SIM-TRANSIT-B", 330.79, 18.88),
    "miri_lrs_slit": ("SIM-PN-1", 273.30, -23.45),
    "nircam_tso_grism": ("SIM-TRANSIT-C", 141.98, 44.31),
    "nircam_coron": ("SIM-HOST-A", 84.23, -8.21),
    "niriss_ami": ("SIM-BINARY-A", 188.35, 57.85),
    "miri_image": ("SIM-MIRI-FIELD", 80.45, -69.52),
}
_OBS_NUMBER = {m: i + 1 for i, m in enumerate(MODES)}
_EXPSTART = 60200.25


def _seed(seed: int, *parts) -> int:
    import hashlib
    text = "|".join(str(p) for p in (seed,) + parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")


def _setup(mode: str, size: str):
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {sorted(MODES)}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    m = MODES[mode]
    subname, readpatt, ngroups, nints, extra = m["sizes"][size]
    sub = get_subarray(m["detector"], subname)
    ro = readout_for(readpatt, m["detector"], sub, nints=nints, ngroups=ngroups)
    return m, sub, ro, dict(extra)


def _spec(mode, m, sub, ro, **kw) -> H.ExposureSpec:
    name, ra, dec = _TARGETS[mode]
    base = dict(instrument=m["instrument"], detector=m["detector"], exp_type=m["exp_type"],
                filter=m["filter"], pupil=m["pupil"], subarray=sub, readout=ro,
                coronmsk=m.get("coronmsk"), program=_PROGRAM, observation=_OBS_NUMBER[mode],
                targname=name, targ_ra=ra, targ_dec=dec, ra_ref=ra, dec_ref=dec,
                roll_ref=15.0 * _OBS_NUMBER[mode] % 360.0, expstart=_EXPSTART + _OBS_NUMBER[mode] / 24.0)
    base.update(kw)
    return H.ExposureSpec(**base)


def _peak_safe_flux(peak_fraction: float, ro: Readout, gain: float, target_dn: float = 20000.0):
    """Point-source flux (e/s) whose brightest pixel collects ``target_dn`` DN by the last group."""
    t = ro.group_times()[-1]
    return target_dn * gain / (peak_fraction * t)


def _psf(m, det) -> S.PSF:
    return S.PSF.for_instrument(m["wavelength_um"], H.PIXEL_SCALES[det])


def _tso_orbit(spec: H.ExposureSpec, a_rs: float):
    """Period (days) of a time-compressed orbit whose transit spans ~60 % of the exposure."""
    start, mid, end = H.integration_times(spec)
    dur = end[-1] - start[0]
    return 0.6 * dur * math.pi * a_rs


def _write(sset: SimulatedSet, spec, rate, outdir, seed, scene_truth, extra=None):
    """Apply the pixel QE response to the scene (e/s), simulate the ramps, record the files."""
    qe = S2.qe_response(spec.detector, spec.subarray, spec.filter)
    response = {"qe_response": {"detector": spec.detector, "subarray": spec.subarray.name,
                                "filter": spec.filter},
                "note": "scene (e/s) x qe_response before the ramps; ramp truth includes it"}
    u, t, r = simulate_exposure(spec, np.asarray(rate, float) * qe, outdir, seed=seed,
                                scene_truth=scene_truth,
                                extra_truth={"mode": sset.mode, "size": sset.size,
                                             "pixel_response": response, **(extra or {})})
    sset.exposures.append(u)
    sset.truths.append(t)
    sset.ramp_truths.append(r)
    cfg = (spec.detector, spec.subarray.name, spec.readout)
    if not any(c[0] == cfg[0] and c[1] == cfg[1] and c[2] == cfg[2] for c in sset.configs):
        sset.configs.append(cfg)
    return u


def _root(path) -> str:
    return Path(path).name.replace("_uncal.fits", "")


# ---------------------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------------------

def _pointing_error(seed, mode, k, error_arcsec):
    """Header-pointing error of dither ``k``: (dRA*cos(Dec), dDec) arcsec and dROLL deg.

    The offset has a uniformly random direction and a magnitude uniform in
    ``[0.5, 1] * error_arcsec``; the roll error is uniform in ``+-0.01 * error_arcsec`` deg
    (0.036 arcsec of roll per arcsec of pointing error: a few mas at the edge of a subarray).
    Drawn from its own random stream, so the scene and the ramps do not depend on it.
    """
    if not error_arcsec:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(_seed(seed, mode, "pointing", k))
    mag = float(error_arcsec) * rng.uniform(0.5, 1.0)
    ang = rng.uniform(0.0, 2 * math.pi)
    droll = float(error_arcsec) * 0.01 * rng.uniform(-1.0, 1.0)
    return mag * math.cos(ang), mag * math.sin(ang), droll


def _imaging(mode, outdir, size, seed, sset, pointing_error_arcsec=0.0):
    m, sub, ro, extra = _setup(mode, size)
    det = m["detector"]
    psf = _psf(m, det)
    gain = detector_properties(det).nominal_gain
    ndither = extra["ndither"]
    scale = H.PIXEL_SCALES[det]
    # dither offsets (arcsec) in the ideal frame (= detector axes here)
    step = 0.6 if sub.xsize <= 80 else 1.6
    offsets = [(0.0, 0.0), (step * 0.55, step * 0.35), (-step * 0.3, step * 0.6),
               (step * 0.45, -step * 0.5)][:ndither]
    if det == "MIRIMAGE":
        patt = f"{ndither}-POINT"
    else:
        patt = "SUBARRAY_DITHER" if sub.name != "FULL" else "INTRAMODULEX"
    maxshift = max(max(abs(a), abs(b)) for a, b in offsets) / scale
    x0 = 4 if det == "MIRIMAGE" or sub.name == "FULL" else 0
    rng = np.random.default_rng(_seed(seed, mode, "field"))
    n = extra["n_stars"]
    margin = psf.half_width / 3 + maxshift + 4 + x0
    xs = rng.uniform(margin, sub.xsize - 1 - margin, n)
    ys = rng.uniform(margin, sub.ysize - 1 - margin, n)
    peak = psf.stamp(0.0, 0.0)[2].max()
    fmax = _peak_safe_flux(peak, ro, gain, 15000.0)
    fl = np.exp(rng.uniform(math.log(fmax / 100.0), math.log(fmax), n))
    spec1 = _spec(mode, m, sub, ro)
    cx, cy = spec1.crpix
    # sky positions through the distortion and the first dither's pointing
    ra_src, dec_src = H.pixel_to_world(spec1, xs, ys)
    to_jy = S2.rate_e_to_jy(m["instrument"], det, m["filter"], m["pupil"])
    for k, (dx, dy) in enumerate(offsets):
        sx, sy = S.sky_to_pixel_offsets(dx, dy, scale, 0.0)
        # the reference pixel of dither k looks at the sky seen at crpix - shift in dither 1
        ra_k, dec_k = H.pixel_to_world(spec1, [cx - 1 - sx], [cy - 1 - sy])
        spec = _spec(mode, m, sub, ro, exposure=k + 1, ra_ref=float(ra_k[0]),
                     dec_ref=float(dec_k[0]),
                     dither={"PATTTYPE": patt, "PATT_NUM": k + 1, "NUMDTHPT": ndither,
                             "XOFFSET": dx, "YOFFSET": dy})
        # the same sky seen through dither k's pointing and the distortion
        xk, yk = H.world_to_pixel(spec, ra_src, dec_src)
        pointing_truth = {}
        if pointing_error_arcsec:
            # the scene is placed with the true pointing (above); the header says otherwise
            de, dn, droll = _pointing_error(seed, mode, k, pointing_error_arcsec)
            true_ptg = H.pointing(spec)
            dec_h = spec.dec_ref + dn / 3600.0
            ra_h = (spec.ra_ref + de / 3600.0 / math.cos(math.radians(spec.dec_ref))) % 360.0
            spec = _spec(mode, m, sub, ro, exposure=k + 1, ra_ref=float(ra_h), dec_ref=float(dec_h),
                         roll_ref=(spec.roll_ref + droll) % 360.0, dither=spec.dither)
            pointing_truth = {"pointing": {
                "true": true_ptg, "header": H.pointing(spec),
                "error_arcsec": [de, dn], "roll_error_deg": droll,
                "note": "sources are placed with 'true'; the header (RA_REF, DEC_REF, ROLL_REF) "
                        "says 'header'; error_arcsec is (dRA cos Dec, dDec)"}}
        sky = 0.5 if det != "MIRIMAGE" else 30.0
        rate, truth = S.star_field(sub.shape, n, psf=psf, sky=sky, offset=(0.0, 0.0),
                                   sources=np.column_stack([xk, yk, fl]))
        for src, ra, dec in zip(truth["sources"], ra_src, dec_src):
            src["ra"] = float(ra)
            src["dec"] = float(dec)
            src["flux_jy"] = src["flux_e_per_s"] * to_jy
        _write(sset, spec, rate, outdir, _seed(seed, mode, "ramps", k), truth,
               {"dither_offset_arcsec": [dx, dy], "dither_shift_pix": [sx, sy], **pointing_truth})
    # associations
    for k, u in enumerate(sset.exposures):
        root = _root(u)
        asn = A.make_association("image2", [(root, [(root + "_rate.fits", "science")])],
                                 program=_PROGRAM, asn_id=f"o{_OBS_NUMBER[mode]:03d}",
                                 index=k + 1)
        sset.associations.append(A.write_association(outdir, asn))
    opt = f"{m['pupil'] or ''}-{m['filter']}".strip("-").lower()
    name = A.level3_product_name(_PROGRAM, f"o{_OBS_NUMBER[mode]:03d}", "t001",
                                 m["instrument"].lower(), opt)
    asn = A.make_association("image3", [(name, [(_root(u) + "_cal.fits", "science")
                                                for u in sset.exposures])],
                             program=_PROGRAM, asn_id=f"o{_OBS_NUMBER[mode]:03d}")
    sset.associations.append(A.write_association(outdir, asn))


def _tso_image(mode, outdir, size, seed, sset):
    m, sub, ro, _ = _setup(mode, size)
    det = m["detector"]
    psf = _psf(m, det)
    gain = detector_properties(det).nominal_gain
    spec = _spec(mode, m, sub, ro, tsovisit=True, xref_sci=(sub.xsize + 1) / 2.0,
                 yref_sci=(sub.ysize + 1) / 2.0)
    start, mid, end = H.integration_times(spec)
    a_rs = 8.0
    period = _tso_orbit(spec, a_rs)
    flux = _peak_safe_flux(psf.stamp(0.0, 0.0)[2].max(), ro, gain, 20000.0)
    rate, truth = S.tso_image_cube(sub.shape, mid, star_flux=flux, psf=psf,
                                   x=(sub.xsize - 1) / 2.0 + 0.3, y=(sub.ysize - 1) / 2.0 - 0.2,
                                   period=period, rp_rs=0.1, a_rs=a_rs, inc_deg=89.0)
    star = truth["star"]
    star["flux_jy"] = star["flux_e_per_s"] * S2.rate_e_to_jy(m["instrument"], det, m["filter"],
                                                             m["pupil"])
    ra, dec = H.pixel_to_world(spec, [star["x"]], [star["y"]])
    star["ra"], star["dec"] = float(ra[0]), float(dec[0])
    u = _write(sset, spec, rate, outdir, _seed(seed, mode, "ramps"), truth)
    root = _root(u)
    sset.associations.append(A.write_association(outdir, A.make_association(
        "tso-image2", [(root, [(root + "_rateints.fits", "science")])], program=_PROGRAM,
        asn_id=f"o{_OBS_NUMBER[mode]:03d}")))
    name = A.level3_product_name(_PROGRAM, f"o{_OBS_NUMBER[mode]:03d}", "t001", "nircam",
                                 f"{m['pupil']}-{m['filter']}-{sub.name}")
    sset.associations.append(A.write_association(outdir, A.make_association(
        "tso3", [(name, [(root + "_calints.fits", "science")])], program=_PROGRAM,
        asn_id=f"o{_OBS_NUMBER[mode]:03d}")))


def _lrs_slit(mode, outdir, size, seed, sset):
    m, sub, ro, _ = _setup(mode, size)
    ny, nx = sub.shape
    if sub.name == "FULL":
        x_slit, half, row_range = 325.0, 24.0, (0, 400)
        coeffs = {"y_ref": 200.0, "c": [9.0, -12.0 / 400.0, 6.0 / 400.0 ** 2]}
        nod = 10.0
    else:
        x_slit, half, row_range = (nx - 1) / 2.0, 24.0, None
        coeffs = None
        nod = 8.0
    gain = detector_properties(m["detector"]).nominal_gain
    tint = ro.group_times()[-1]
    cont = 20000.0 * gain / tint * 0.3   # continuum per row so the peak pixel stays < 20000 DN
    for k, off in enumerate((-nod, nod)):
        rate, truth = S.slit_spectrum(sub.shape, x_slit=x_slit, slit_halflength=half,
                                      nod_offset=off, wave_coeffs=coeffs, continuum=cont,
                                      lines=[{"wavelength_um": w, "flux_e_per_s": f * cont,
                                              "sigma_um": s}
                                             for w, f, s in ((6.985, 3.0, 0.05), (8.991, 2.0, 0.06),
                                                             (10.511, 4.0, 0.07))],
                                      sky=0.02 * cont, row_range=row_range)
        spec = _spec(mode, m, sub, ro, exposure=k + 1,
                     dither={"PATTTYPE": "ALONG-SLIT-NOD", "PATT_NUM": k + 1, "NUMDTHPT": 2,
                             "XOFFSET": 0.0, "YOFFSET": off * H.PIXEL_SCALES["MIRIMAGE"]},
                     extra_sci={"DISPAXIS": 2})
        _write(sset, spec, rate, outdir, _seed(seed, mode, "ramps", k), truth)
    roots = [_root(u) for u in sset.exposures]
    for k, root in enumerate(roots):
        other = roots[1 - k]
        asn = A.make_association("spec2", [(root, [(root + "_rate.fits", "science"),
                                                   (other + "_rate.fits", "background")])],
                                 program=_PROGRAM, asn_id=f"o{_OBS_NUMBER[mode]:03d}",
                                 index=k + 1)
        sset.associations.append(A.write_association(outdir, asn))
    name = A.level3_product_name(_PROGRAM, f"o{_OBS_NUMBER[mode]:03d}", "t001", "miri", "p750l")
    sset.associations.append(A.write_association(outdir, A.make_association(
        "spec3", [(name, [(r + "_cal.fits", "science") for r in roots])], program=_PROGRAM,
        asn_id=f"o{_OBS_NUMBER[mode]:03d}")))


def _tso_grism(mode, outdir, size, seed, sset):
    m, sub, ro, _ = _setup(mode, size)
    gain = detector_properties(m["detector"]).nominal_gain
    ny = sub.ysize
    y_trace = 34.0 if ny == 64 else ny / 2.0 + 2.0
    spec = _spec(mode, m, sub, ro, tsovisit=True, xref_sci=887.0, yref_sci=y_trace + 1.0,
                 extra_sci={"DISPAXIS": 1})
    start, mid, end = H.integration_times(spec)
    a_rs = 9.0
    period = _tso_orbit(spec, a_rs)
    # trace peak pixel fraction ~0.36 (sigma 1.1): keep peak < 20000 DN
    peak = 20000.0 * gain / ro.group_times()[-1] / 0.36
    rate, truth = S.grism_tso(sub.shape, mid, y_trace=y_trace, x_offset=sub.xstart - 1,
                              star_peak=peak, period=period, a_rs=a_rs)
    u = _write(sset, spec, rate, outdir, _seed(seed, mode, "ramps"), truth)
    root = _root(u)
    sset.associations.append(A.write_association(outdir, A.make_association(
        "tso-spec2", [(root, [(root + "_rateints.fits", "science")])], program=_PROGRAM,
        asn_id=f"o{_OBS_NUMBER[mode]:03d}")))
    name = A.level3_product_name(_PROGRAM, f"o{_OBS_NUMBER[mode]:03d}", "t001", "nircam",
                                 f"f322w2-grismr-{sub.name}")
    sset.associations.append(A.write_association(outdir, A.make_association(
        "tso3", [(name, [(root + "_calints.fits", "science")])], program=_PROGRAM,
        asn_id=f"o{_OBS_NUMBER[mode]:03d}")))


def _coron(mode, outdir, size, seed, sset):
    m, sub, ro, _ = _setup(mode, size)
    det = m["detector"]
    psf = _psf(m, det)
    gain = detector_properties(det).nominal_gain
    ny, nx = sub.shape
    if sub.name == "FULL":
        center = (1024.3, 1750.6)
    else:
        center = ((nx - 1) / 2.0 + 0.3, (ny - 1) / 2.0 - 0.4)
    iwa = 0.59 / H.PIXEL_SCALES[det]
    # unocculted peak would be ~0.17 of the flux; the mask passes a few per cent of it
    star = 20000.0 * gain / ro.group_times()[-1] / 0.17 * 8.0
    obs = _OBS_NUMBER[mode]
    for k, ref in enumerate((False, True)):
        rate, truth = S.coronagraph_scene(sub.shape, psf=psf, star_flux=star, center=center,
                                          iwa_pix=iwa, companion_sep_pix=1.1 / H.PIXEL_SCALES[det],
                                          companion_pa_deg=60.0, contrast=2e-3,
                                          pixel_scale=H.PIXEL_SCALES[det], reference=ref,
                                          reference_flux_ratio=1.12)
        kw = {}
        if ref:
            kw = dict(observation=obs + 10, targname="SIM-REF-STAR", targ_ra=84.9, targ_dec=-7.6,
                      ra_ref=84.9, dec_ref=-7.6, is_psf=True)
        spec = _spec(mode, m, sub, ro, xref_sci=center[0] + 1, yref_sci=center[1] + 1, **kw)
        _write(sset, spec, rate, outdir, _seed(seed, mode, "ramps", k), truth,
               {"role": "psf" if ref else "science"})
    sci, ref = (_root(u) for u in sset.exposures)
    for k, root in enumerate((sci, ref)):
        sset.associations.append(A.write_association(outdir, A.make_association(
            "image2", [(root, [(root + "_rateints.fits", "science")])], program=_PROGRAM,
            asn_id=f"o{obs + 10 * k:03d}", index=k + 1)))
    name = A.level3_product_name(_PROGRAM, "c1000", "t001", "nircam",
                                 f"f444w-maskrnd-{sub.name}")
    sset.associations.append(A.write_association(outdir, A.make_association(
        "coron3", [(name, [(sci + "_calints.fits", "science"), (ref + "_calints.fits", "psf")])],
        program=_PROGRAM, asn_id="c1000")))


def _ami(mode, outdir, size, seed, sset):
    m, sub, ro, extra = _setup(mode, size)
    gain = detector_properties(m["detector"]).nominal_gain
    ny, nx = sub.shape
    center = ((nx - 1) / 2.0 + 0.2, (ny - 1) / 2.0 - 0.3)
    obs = _OBS_NUMBER[mode]
    # NRM peak pixel holds ~1.2 % of the flux
    star = 20000.0 * gain / ro.group_times()[-1] / 0.012
    for k, binary in enumerate((True, False)):
        rate, truth = S.ami_scene(sub.shape, star_flux=star if binary else 0.9 * star,
                                  center=center, binary=binary, separation_mas=150.0,
                                  pa_deg=45.0, flux_ratio=0.1, nfft=extra["nfft"])
        kw = {}
        if not binary:
            kw = dict(observation=obs + 10, targname="SIM-CAL-STAR", targ_ra=188.1,
                      targ_dec=57.2, ra_ref=188.1, dec_ref=57.2, is_psf=True)
        spec = _spec(mode, m, sub, ro, xref_sci=center[0] + 1, yref_sci=center[1] + 1,
                     dither={"PATTTYPE": "NONE", "PATT_NUM": 1, "NUMDTHPT": 1}, **kw)
        _write(sset, spec, rate, outdir, _seed(seed, mode, "ramps", k), truth,
               {"role": "science" if binary else "psf"})
    sci, cal = (_root(u) for u in sset.exposures)
    for k, root in enumerate((sci, cal)):
        sset.associations.append(A.write_association(outdir, A.make_association(
            "image2", [(root, [(root + "_rateints.fits", "science")])], program=_PROGRAM,
            asn_id=f"o{obs + 10 * k:03d}", index=k + 1)))
    name = A.level3_product_name(_PROGRAM, "c1001", "t001", "niriss", "f480m-nrm-sub80")
    sset.associations.append(A.write_association(outdir, A.make_association(
        "ami3", [(name, [(sci + "_calints.fits", "science"), (cal + "_calints.fits", "psf")])],
        program=_PROGRAM, asn_id="c1001")))


_FUNCS = {"nircam_image": _imaging, "miri_image": _imaging, "nircam_tso_image": _tso_image,
          "miri_lrs_slit": _lrs_slit, "nircam_tso_grism": _tso_grism, "nircam_coron": _coron,
          "niriss_ami": _ami}


def simulate(mode: str, outdir, *, size: str = "tiny", seed: int = 0,
             pointing_error_arcsec: float = 0.0) -> SimulatedSet:
    """Simulate one observing mode.

    Parameters
    ----------
    mode : str
        A key of :data:`MODES`.
    outdir : str or Path
        Folder for the files (created).
    size : str
        'tiny' (tests), 'demo' or 'full' (benchmarks).
    seed : int
        Everything random derives from it; same seed -> identical bytes.
    pointing_error_arcsec : float
        Imaging modes (``nircam_image``, ``miri_image``) only: every dither's header pointing
        (RA_REF, DEC_REF, ROLL_REF and the TAN cards derived from them) is off by up to this
        much (arcsec; magnitude uniform in [0.5, 1] times it, random direction, roll error up
        to ``0.01 * pointing_error_arcsec`` deg) from the pointing the scene was placed with.
        Each truth JSON records ``pointing``: ``true`` and ``header`` keywords, ``error_arcsec``
        (dRA cos Dec, dDec) and ``roll_error_deg``. 0 (default): headers are exact.

    Returns
    -------
    SimulatedSet
    """
    _setup(mode, size)
    if pointing_error_arcsec and _FUNCS[mode] is not _imaging:
        raise ValueError(f"pointing_error_arcsec is supported for the imaging modes "
                         f"(nircam_image, miri_image), not {mode!r}")
    if pointing_error_arcsec < 0:
        raise ValueError(f"pointing_error_arcsec must be >= 0, got {pointing_error_arcsec}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sset = SimulatedSet(mode=mode, size=size)
    if pointing_error_arcsec:
        _imaging(mode, outdir, size, int(seed), sset, float(pointing_error_arcsec))
    else:
        _FUNCS[mode](mode, outdir, size, int(seed), sset)
    return sset


def demo_set(outdir, seed: int = 0) -> list:
    """Simulate every mode at 'demo' size into ``outdir/<mode>/``; returns the SimulatedSets."""
    outdir = Path(outdir)
    return [simulate(mode, outdir / mode, size="demo", seed=seed) for mode in MODES]


def configurations(sets) -> list:
    """Distinct ``(detector, subarray name, Readout)`` of the exposures in ``sets``.

    The input of :func:`simulator.crds_cache.build_crds_cache`.
    """
    out = []
    for s in sets:
        for cfg in s.configs:
            if cfg not in out:
                out.append(cfg)
    return out
