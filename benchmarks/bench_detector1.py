"""Benchmark calwebb_detector1: whole-process wall time and peak memory, per step, pixel-groups/s.

Simulates the exposures, builds their local CRDS cache, then runs
``python -m runner run calwebb_detector1 ...`` in a child process (so the figures are those of a
user's run, imports and file I/O included) and prints its per-step table.

Usage::

    python benchmarks/bench_detector1.py [--case nircam10 nircam40 miri_tso] [--repeat 3] [--workdir DIR]

For the record (see shared notes): the reference pipeline (jwst 3.0) takes about 19 s and
2.8 GB for the full-frame 10-group NIRCam exposure on the 2-core machine.
"""
from __future__ import annotations

import argparse
import os
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


def simulate_in_child(case, workdir):
    """Simulate in a separate process: a child's peak RSS starts from its parent's peak at fork,
    so a parent that simulated a large exposure would inflate the pipeline's figure."""
    import json

    out = subprocess.run([sys.executable, __file__, "--simulate-only", "--case", case, "--workdir", str(workdir)],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    from simulator.detectors import get_subarray
    from simulator.ramps import Readout

    return (Path(info["uncal"]), Path(info["cache"]), Readout(**info["readout"]),
            get_subarray(CASES[case][0], CASES[case][1]), info["sim_s"])


_RUSAGE = {}


def _child_peak_kib(pid):
    """Peak RSS (KiB) of one finished child (reaped by communicate(); recorded by the SIGCHLD-free
    wait4 wrapper below)."""
    return _RUSAGE.get(pid, 0)


_real_waitpid = os.waitpid


def _waitpid_recording(pid, options):
    """os.waitpid that also records the child's own rusage (subprocess reaps through it)."""
    if options == 0 and pid > 0:
        rpid, status, usage = os.wait4(pid, 0)
        _RUSAGE[rpid] = usage.ru_maxrss
        return rpid, status
    return _real_waitpid(pid, options)


os.waitpid = _waitpid_recording


def run_case(case, workdir, repeat=3):
    """Simulate once, run the recipe ``repeat`` times; print each run and the per-step table."""
    uncal, cache, readout, sub, sim_s = simulate_in_child(case, workdir)
    out = Path(workdir) / f"{case}_out"
    env = dict(os.environ, CRDS_PATH=str(cache))
    env.pop("CRDS_SERVER_URL", None)
    # measure as an installed user runs it: Python writes and reuses its bytecode (.pyc), and
    # numba its compiled-function cache; the first run pays for both (reported apart)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, "-m", "runner", "run", "calwebb_detector1", str(uncal), "-o", str(out),
           "--crds-context", "jwst_0001.pmap", "--no-resume"]
    pixel_groups = readout.nints * readout.ngroups * sub.ysize * sub.xsize
    print(f"\n=== {case}: {sub.ysize}x{sub.xsize}, {readout.nints} ints x {readout.ngroups} groups "
          f"(simulated in {sim_s:.1f} s)")
    walls, peaks = [], []
    for k in range(max(1, repeat)):
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = child.communicate()
        wall = time.perf_counter() - t0
        peak = _child_peak_kib(child.pid) / 1024
        if child.returncode:
            print(stdout, stderr, file=sys.stderr)
            raise SystemExit(f"{case}: detector1 failed")
        walls.append(wall)
        peaks.append(peak)
        print(f"run {k + 1}: {wall:.2f} s wall, peak RSS {peak:.0f} MiB"
              + (" (first run: bytecode and numba caches may be cold)" if k == 0 else ""))
    print(stdout.strip())
    warm = walls[1:] or walls
    best = min(warm)
    print(f"whole process: {best:.2f} s wall (best of {len(warm)} warm runs; median "
          f"{float(np.median(warm)):.2f} s), peak RSS {max(peaks):.0f} MiB, "
          f"{pixel_groups / best / 1e6:.1f} M pixel-groups/s")
    return best, max(peaks)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--workdir", default="bench-detector1")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the first warms the caches)")
    parser.add_argument("--simulate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if args.simulate_only:
        import dataclasses
        import json

        uncal, cache, readout, _sub, sim_s = simulate(args.case[0], args.workdir)
        print(json.dumps({"uncal": str(uncal), "cache": str(cache), "sim_s": sim_s,
                          "readout": dataclasses.asdict(readout)}))
        return
    for case in args.case:
        run_case(case, args.workdir, args.repeat)


if __name__ == "__main__":
    main()
