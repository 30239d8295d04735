"""Write ``_uncal.fits`` files laid out as the archive ships them, plus their truth.

Layout of ``<rootname>_uncal.fits``
-----------------------------------
====  ==========  =========================================================================
HDU   EXTNAME     content
====  ==========  =========================================================================
0     PRIMARY     :func:`simulator.headers.primary_cards` (no data)
1     SCI         uint16 ``(nints, ngroups, ny, nx)`` stored as int16 with BZERO = 32768;
                  :func:`simulator.headers.sci_cards` (pointing, WCS, MJD-BEG/AVG/END)
2     GROUP       binary table, jwst ``group.schema`` columns
3     INT_TIMES   binary table, jwst ``int_times.schema`` columns
====  ==========  =========================================================================

No ASDF extension is written: stdatamodels reads every metadata item this simulator sets from
the FITS keywords through its schemas, and a hand-made ASDF extension risks disagreeing with
them. ``stdatamodels.jwst.datamodels.Level1bModel`` and ``RampModel`` open the files and
validate.

Beside each exposure (same folder):

* ``<rootname>_truth.json``: ``{"rootname", "uncal", "ramp_truth", "seed", "mode",
  "exposure": {keywords asked for}, "scene": {scene truth dict from simulator.scenes},
  ...}``;
* ``<rootname>_ramptruth.fits``: :class:`simulator.ramps.RampTruth` (rate in DN/s per
  integration, cosmic rays, first saturated group).

All files are written to a temporary name in the target folder and renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.io import fits

from runner.atomic import atomic_path

from . import headers as H
from .ramps import simulate_ramps

__all__ = ["build_hdulist", "write_uncal", "write_json", "simulate_exposure", "atomic_write"]


def atomic_write(path, writer) -> str:
    """Call ``writer(tmp_path)`` then rename the temporary file onto ``path``."""
    with atomic_path(path) as tmp:
        writer(str(tmp))
    return str(Path(path))


def _header(cards) -> fits.Header:
    h = fits.Header()
    for key, value, comment in cards:
        if key == "":
            h.add_blank()
        else:
            card = fits.Card(key, value)
            room = 80 - len(card.image.rstrip()) - 3
            h[key] = (value, comment[:room] if room > 0 else "")
    return h


def build_hdulist(spec: H.ExposureSpec, ramps: np.ndarray, *, fname: str | None = None) -> fits.HDUList:
    """The archive-layout HDU list of one exposure.

    Parameters
    ----------
    spec : ExposureSpec
    ramps : ndarray uint16, (nints, ngroups, ny, nx), DN
    fname : str, optional
        FILENAME keyword.
    """
    r = spec.readout
    expected = (r.nints, r.ngroups, spec.subarray.ysize, spec.subarray.xsize)
    if ramps.shape != expected:
        raise ValueError(f"ramps shape {ramps.shape} != {expected}")
    primary = fits.PrimaryHDU(header=_header(H.primary_cards(spec, fname=fname)))
    sci = fits.ImageHDU(np.ascontiguousarray(ramps, dtype=np.uint16),
                        header=_header(H.sci_cards(spec)), name="SCI")
    group = fits.BinTableHDU(H.group_table(spec), name="GROUP")
    times = fits.BinTableHDU(H.int_times_table(spec), name="INT_TIMES")
    return fits.HDUList([primary, sci, group, times])


def write_uncal(path, spec: H.ExposureSpec, ramps: np.ndarray) -> str:
    """Write ``_uncal.fits`` atomically; returns the path."""
    path = Path(path)
    hdul = build_hdulist(spec, ramps, fname=path.name)
    return atomic_write(path, lambda tmp: hdul.writeto(tmp, overwrite=True))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def write_json(path, data: dict) -> str:
    """Write JSON (sorted keys, indented) atomically."""
    text = json.dumps(_jsonable(data), indent=1, sort_keys=True)

    def w(tmp):
        with open(tmp, "w") as fh:
            fh.write(text + "\n")
    return atomic_write(path, w)


def exposure_keywords(spec: H.ExposureSpec) -> dict:
    """The main keywords asked for, as recorded in the truth file."""
    r, s = spec.readout, spec.subarray
    d = {"INSTRUME": spec.instrument, "DETECTOR": spec.detector, "EXP_TYPE": spec.exp_type,
         "FILTER": spec.filter, "SUBARRAY": s.name,
         "SUBSTRT1": s.xstart, "SUBSTRT2": s.ystart, "SUBSIZE1": s.xsize, "SUBSIZE2": s.ysize,
         "TSOVISIT": bool(spec.tsovisit), "TARGNAME": spec.targname,
         "RA_REF": spec.ra_ref, "DEC_REF": spec.dec_ref, "ROLL_REF": spec.roll_ref,
         "PIXSCALE": spec.pixel_scale, **r.header()}
    if spec.pupil is not None:
        d["PUPIL"] = spec.pupil
    if spec.grating is not None:
        d["GRATING"] = spec.grating
    if spec.coronmsk is not None:
        d["CORONMSK"] = spec.coronmsk
    d.update({k: v for k, v in spec.dither.items()})
    return d


def simulate_exposure(spec: H.ExposureSpec, rate_e: np.ndarray, outdir, *, seed: int,
                      scene_truth: dict | None = None, extra_truth: dict | None = None,
                      cosmic_ray_rate: float = 5e-5, include=None,
                      properties_version: int = 1):
    """Simulate ramps for a scene and write the uncal file and its truth files.

    Parameters
    ----------
    spec : ExposureSpec
    rate_e : ndarray, e/s
        ``(ny, nx)`` or ``(nints, ny, nx)`` over the subarray.
    outdir : str or Path
    seed : int
        Ramp-noise seed.
    scene_truth : dict, optional
        Truth of the scene (JSON-serialisable).
    extra_truth : dict, optional
        Merged into the truth JSON at top level.
    cosmic_ray_rate, include, properties_version
        Passed to :func:`simulator.ramps.simulate_ramps`.

    Returns
    -------
    (uncal_path, truth_json_path, ramp_truth_path) : tuple of str
    """
    outdir = Path(outdir)
    root = H.rootname(spec)
    ramps, rtruth = simulate_ramps(spec.detector, spec.subarray, spec.readout, rate_e,
                                   seed=seed, cosmic_ray_rate=cosmic_ray_rate,
                                   properties_version=properties_version, include=include)
    uncal = write_uncal(outdir / f"{root}_uncal.fits", spec, ramps)
    rt_path = atomic_write(outdir / f"{root}_ramptruth.fits",
                           lambda tmp: rtruth.to_fits().writeto(tmp, overwrite=True))
    start, mid, end = H.integration_times(spec)
    truth = {"rootname": root, "uncal": Path(uncal).name, "ramp_truth": Path(rt_path).name,
             "seed": int(seed), "exposure": exposure_keywords(spec),
             "int_mid_mjd_utc": mid.tolist(), "scene": scene_truth or {},
             "n_cosmic_rays": int(len(rtruth.cosmic_rays))}
    if extra_truth:
        truth.update(extra_truth)
    tj = write_json(outdir / f"{root}_truth.json", truth)
    return uncal, tj, rt_path
