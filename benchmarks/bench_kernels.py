"""Time the stage-1 hot kernels: jump detection and ramp fitting on a full-frame ramp.

Usage: ``python benchmarks/bench_kernels.py [--ngroups 10 40] [--cores 1 2] [--size 2048]``

Prints wall seconds, process CPU seconds, pixel-groups per second and peak memory for ``detect_jumps`` and ``fit_ramps``
on a 1-integration ramp with Poisson + read noise and 1 % cosmic rays. JIT compilation is done
on a small array first (numba caches it on disk), so the figures are steady-state run times.
Peak memory is the traced peak of numpy allocations during the call (tracemalloc) and the
process's maximum resident size (ru_maxrss) at the end.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steps.jump.twopoint import detect_jumps  # noqa: E402
from steps.ramp_fit.ols import fit_ramps  # noqa: E402


def make(ngroups, size, seed=0):
    """A (1, ngroups, size, size) ramp in DN with noise and 1 % cosmic rays."""
    rng = np.random.default_rng(seed)
    tgroup, gain, rn = 10.737, 2.0, 12.0
    rate = rng.uniform(0.0, 50.0, size=(size, size)).astype(np.float32)
    data = np.empty((1, ngroups, size, size), np.float32)
    acc = np.zeros((size, size), np.float32)
    for g in range(ngroups):
        acc += rng.poisson(rate * gain * tgroup).astype(np.float32) / gain
        data[0, g] = acc + rng.normal(0.0, rn / np.sqrt(2), size=(size, size)).astype(np.float32)
    hit = rng.random((size, size)) < 0.01
    grp = rng.integers(1, ngroups, size=(size, size))
    for g in range(1, ngroups):
        data[0, g][hit & (grp <= g)] += 500.0
    gdq = np.zeros(data.shape, np.uint8)
    return data, gdq, np.full((size, size), gain, np.float32), np.full((size, size), rn, np.float32), tgroup


def timed(fn):
    """Run ``fn``: (result, wall seconds, process CPU seconds, traced peak bytes)."""
    tracemalloc.start()
    c0 = os.times()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    c1 = os.times()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, dt, (c1.user - c0.user) + (c1.system - c0.system), peak


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngroups", type=int, nargs="+", default=[10, 40])
    ap.add_argument("--cores", nargs="+", default=["1", "2"])
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args(argv)

    # compile / load the numba cache on a tiny problem
    d, q, g, r, tg = make(5, 16)
    detect_jumps(d, q, g, r, tgroup=tg)
    fit_ramps(d, q, np.zeros(g.shape, np.uint32), g, r, tgroup=tg, tframe=tg, nframes=1)

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other processes inflate wall times)")
    print(f"{'kernel':12s} {'ngroups':>7s} {'cores':>5s} {'seconds':>8s} {'cpu s':>7s} {'Mpixgrp/s':>10s} {'peak MB':>8s}")
    for ng in args.ngroups:
        data, gdq, gain, rn, tg = make(ng, args.size)
        npg = data.size
        pdq = np.zeros(gain.shape, np.uint32)
        for cores in args.cores:
            c = int(cores) if cores.isdigit() else cores
            new_gdq, dt, cpu, peak = timed(lambda: detect_jumps(data, gdq, gain, rn, tgroup=tg, maximum_cores=c))
            print(f"{'jump':12s} {ng:7d} {cores:>5s} {dt:8.3f} {cpu:7.2f} {npg / dt / 1e6:10.1f} {peak / 1e6:8.1f}")
            _, dt, cpu, peak = timed(lambda: fit_ramps(data, new_gdq, pdq, gain, rn, tgroup=tg, tframe=tg, nframes=1,
                                                       maximum_cores=c))
            print(f"{'ramp_fit':12s} {ng:7d} {cores:>5s} {dt:8.3f} {cpu:7.2f} {npg / dt / 1e6:10.1f} {peak / 1e6:8.1f}")
        del data, gdq, new_gdq
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
