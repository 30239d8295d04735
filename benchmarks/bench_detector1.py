"""Benchmark calwebb_detector1: whole-process wall time and peak memory, per step, pixel-groups/s.

Simulates the exposures, builds their local CRDS cache, then runs
``python -m runner run calwebb_detector1 ...`` in a child process (so the figures are those of a
user's run, imports and file I/O included) and prints its per-step table.

Usage::

    python benchmarks/bench_detector1.py [--case nircam10 nircam40 miri_tso] [--workdir DIR]

For the record (see shared notes): the reference pipeline (jwst 3.0) takes about 19 s and
2.8 GB for the full-frame 10-group NIRCam exposure on the 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CASES = {
    # name: (detector, subarray, readpatt, nints, ngroups)
    "nircam10": ("NRCA1", "FULL", "RAPID", 1, 10),
    "nircam40": ("NRCA1", "FULL", "RAPID", 1, 40),
    "miri_tso": ("MIRIMAGE", "SUB256", "FAST", 50, 45),
}


def simulate(case, workdir):
    from simulator import crds_cache
    from simulator.detectors import get_detector, get_subarray
    from simulator.headers import ExposureSpec
    from simulator.ramps import readout_for
    from simulator.scenes import PSF, star_field
    from simulator.uncal import simulate_exposure

    det, sub_name, readpatt, nints, ngroups = CASES[case]
    sub = get_subarray(det, sub_name)
    readout = readout_for(readpatt, det, sub, nints=nints, ngroups=ngroups)
    instrument = get_detector(det).instrument
    exp_type = {"NIRCAM": "NRC_IMAGE", "MIRI": "MIR_IMAGE"}[instrument]
    filt = {"NIRCAM": "F200W", "MIRI": "F770W"}[instrument]
    spec = ExposureSpec(instrument=instrument, detector=det, exp_type=exp_type, filter=filt,
                        pupil="CLEAR" if instrument == "NIRCAM" else None, subarray=sub, readout=readout,
                        tsovisit=nints > 1)
    psf = PSF(kind="gaussian", fwhm=2.0)
    # faint sky everywhere, a few hundred stars up to near saturation over the exposure
    peak = 40000.0 / max(readout.integration_time, 1.0)
    rate, _truth = star_field(sub.shape, 300, seed=3, flux_range=(peak, peak * 20), sky=2.0, psf=psf, margin=8)
    t0 = time.perf_counter()
    uncal, _, _ = simulate_exposure(spec, rate.astype(np.float32), Path(workdir) / case, seed=5)
    sim_s = time.perf_counter() - t0
    cache = crds_cache.build_crds_cache(Path(workdir) / "crds_cache", [(det, sub_name, readout)])
    return Path(uncal), cache, readout, sub, sim_s


def run_case(case, workdir):
    uncal, cache, readout, sub, sim_s = simulate(case, workdir)
    out = Path(workdir) / f"{case}_out"
    env = dict(os.environ, CRDS_PATH=str(cache))
    env.pop("CRDS_SERVER_URL", None)
    cmd = [sys.executable, "-m", "runner", "run", "calwebb_detector1", str(uncal), "-o", str(out),
           "--crds-context", "jwst_0001.pmap"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit(f"{case}: detector1 failed")
    pixel_groups = readout.nints * readout.ngroups * sub.ysize * sub.xsize
    print(f"\n=== {case}: {sub.ysize}x{sub.xsize}, {readout.nints} ints x {readout.ngroups} groups "
          f"(simulated in {sim_s:.1f} s)")
    print(proc.stdout.strip())
    print(f"whole process: {wall:.2f} s wall, peak RSS {max(peak, before) / 1024:.0f} MiB "
          f"(peak of all children so far), {pixel_groups / wall / 1e6:.1f} M pixel-groups/s")
    return wall, peak / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--workdir", default="bench-detector1")
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    for case in args.case:
        run_case(case, args.workdir)


if __name__ == "__main__":
    main()
