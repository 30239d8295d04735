"""Benchmark time-series imaging, uncal -> light curve: time and peak memory per stage, vs nints.

Simulates NIRCam TSO imaging exposures (``nircam_tso_image``, SUB64P, RAPID, 3 groups) of
500 and 2000 integrations (by default), builds their local CRDS cache, then runs, each in its
own child process (``python -m runner run ...``, so imports and file I/O are included):
calwebb_detector1 (uncal -> rateints), calwebb_image2 (tso variant: calints) and
calwebb_tso3 (crfints and the _phot.ecsv light curve). The peak memory of each child is its own
``ru_maxrss`` (``os.wait4``). Comparing the peaks at 500 and 2000 integrations shows whether
memory is bounded in the number of integrations (the input and output cubes themselves grow:
their size is printed beside the peaks).

Usage::

    python benchmarks/bench_tso.py [--nints 500 2000] [--ngroups 3] [--memory-budget MIB] [--workdir DIR]

Each stage runs with ``--memory-budget`` (default 256 MiB): exposures whose working set is
larger are processed in chunks of integrations or rows (stage 1 and 2); calwebb_tso3 always
streams its members (blocks of rows for outlier detection, the aperture cutout for photometry).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

STAGES = ("calwebb_detector1", "calwebb_image2", "calwebb_tso3")


@contextmanager
def tso_size(nints, ngroups, subarray="SUB64P"):
    """Temporarily make the simulator's 'tiny' TSO imaging size ``nints`` integrations."""
    from simulator import modes

    sizes = modes.MODES["nircam_tso_image"]["sizes"]
    old = sizes["tiny"]
    sizes["tiny"] = (subarray, "RAPID", ngroups, nints, {})
    try:
        yield
    finally:
        sizes["tiny"] = old


def run_child(cmd, env):
    """Run ``cmd``; return (wall s, peak RSS MiB of that child, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode:
        print(out, file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024.0, out


def simulate(nints, ngroups, work):
    """Simulate one exposure and its CRDS cache (run in a child: keeps this process small)."""
    import json

    from simulator import crds_cache, modes

    t0 = time.perf_counter()
    with tso_size(nints, ngroups):
        sset = modes.simulate("nircam_tso_image", Path(work) / "sim", size="tiny", seed=11)
    sim_s = time.perf_counter() - t0
    cache = crds_cache.build_crds_cache(Path(work) / "crds", modes.configurations([sset]))
    print(json.dumps({"uncal": sset.exposures[0], "associations": sset.associations,
                      "cache": str(cache), "sim_s": sim_s}))


def run_case(nints, ngroups, workdir, budget):
    import json

    work = Path(workdir) / f"n{nints}"
    if work.exists():
        shutil.rmtree(work)
    # simulate in a child: on Linux a child's ru_maxrss starts from its parent's peak at fork,
    # so this process must stay small for the per-stage peaks to be the stages' own
    proc = subprocess.run([sys.executable, __file__, "--simulate-only", str(nints), str(ngroups), str(work)],
                          capture_output=True, text=True, check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    sim_s = info["sim_s"]
    env = dict(os.environ, CRDS_PATH=info["cache"])
    env.pop("CRDS_SERVER_URL", None)
    env.pop("CRDS_CONTEXT", None)
    out = work / "out"
    out.mkdir(parents=True)
    uncal = Path(info["uncal"])
    root = uncal.name.replace("_uncal.fits", "")
    asn = [a for a in info["associations"] if "_tso3_" in Path(a).name][0]
    shutil.copy(asn, out / Path(asn).name)
    inputs = {"calwebb_detector1": uncal, "calwebb_image2": out / f"{root}_rateints.fits",
              "calwebb_tso3": out / Path(asn).name}
    print(f"\n=== {nints} integrations x {ngroups} groups, SUB64P (simulated in {sim_s:.1f} s; "
          f"uncal {uncal.stat().st_size / 2**20:.0f} MiB)")
    rows = []
    for stage in STAGES:
        cmd = [sys.executable, "-m", "runner", "run", stage, str(inputs[stage]), "-o", str(out),
               "--crds-context", "jwst_0001.pmap", "--memory-budget", str(budget)]
        wall, peak, text = run_child(cmd, env)
        rows.append((stage, wall, peak))
        steps = [ln for ln in text.splitlines() if "not one of ours" not in ln]
        print(f"--- {stage}: {wall:.2f} s wall, peak RSS {peak:.0f} MiB")
        print("\n".join("    " + ln for ln in steps[-14:]))
    sizes = {p.name.rsplit("_", 1)[-1]: p.stat().st_size / 2**20 for p in out.glob("*.fits")}
    print("products (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(sizes.items())))
    return rows, sizes


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--simulate-only":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        simulate(int(argv[1]), int(argv[2]), argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--ngroups", type=int, default=3)
    parser.add_argument("--memory-budget", type=float, default=256.0,
                        help="memory budget (MiB) passed to every stage (default 256)")
    parser.add_argument("--workdir", default="bench-tso")
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    results = {n: run_case(n, args.ngroups, args.workdir, args.memory_budget) for n in args.nints}
    print(f"\n=== summary: wall s / peak RSS MiB per stage (memory budget {args.memory_budget:.0f} MiB)")
    print(f"{'nints':>6} " + " ".join(f"{s:>26}" for s in STAGES) + f" {'rateints MiB':>13}")
    for n, (rows, sizes) in results.items():
        cells = " ".join(f"{w:>12.2f} s {p:>8.0f} MiB" for _, w, p in rows)
        print(f"{n:>6} {cells} {sizes.get('rateints.fits', float('nan')):>13.0f}")
    if len(results) >= 2:
        (n0, (r0, _)), (n1, (r1, _)) = list(results.items())[0], list(results.items())[-1]
        for (stage, _, p0), (_, _, p1) in zip(r0, r1):
            print(f"{stage}: peak grows {p1 - p0:+.0f} MiB from {n0} to {n1} integrations "
                  f"({(p1 - p0) / (n1 - n0) * 1024:.1f} KiB per integration)")


if __name__ == "__main__":
    main()
