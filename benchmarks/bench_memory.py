"""Benchmark peak memory vs number of integrations, in memory and chunked (``--memory-budget``).

Simulates NIRCam TSO imaging exposures (``nircam_tso_image``, SUB64P, RAPID, 3 groups) of 500
and 2000 integrations (by default) in a child process, then runs each stage in its own child
(``Recipe.run``, so the input is opened lazily) once with a large budget (in-memory execution)
and once with a small one (chunked, :mod:`runner.chunked`), and prints each child's peak RSS
(``ru_maxrss`` from ``os.wait4``). Chunked peaks should not grow with the number of integrations.
calwebb_tso3 is not chunkable (tso_photometry needs all integrations) and is shown in memory.

Usage::

    python benchmarks/bench_memory.py [--nints 500 2000] [--budget 64] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTEXT = "jwst_0001.pmap"


def child_run(recipe, inp, out, budget):
    """In a child: run one recipe on one input with the given budget (MiB)."""
    sys.path.insert(0, str(HERE.parent))
    os.environ["WEBBCAL_MEMORY_BUDGET"] = str(budget)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    from runner.recipe import Recipe

    res = Recipe.load(recipe).run([inp], output_dir=out, crds_context=CONTEXT)
    print(json.dumps({"outputs": res[0].outputs, "main": res[0].main_output}))


def run_child(args, env):
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        print(out, file=sys.stderr)
        raise SystemExit(f"failed: {args}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024.0, out


def run_case(nints, ngroups, budget, workdir):
    work = Path(workdir) / f"n{nints}"
    if work.exists():
        shutil.rmtree(work)
    proc = subprocess.run([sys.executable, str(HERE / "bench_tso.py"), "--simulate-only", str(nints),
                           str(ngroups), str(work)], capture_output=True, text=True, check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    env = dict(os.environ, CRDS_PATH=info["cache"])
    env.pop("CRDS_SERVER_URL", None)
    env.pop("CRDS_CONTEXT", None)
    uncal = Path(info["uncal"])
    print(f"\n=== {nints} integrations x {ngroups} groups, SUB64P (uncal {uncal.stat().st_size / 2**20:.0f} MiB)")
    rows = {}
    for mode, b in (("in-memory", 1e6), ("chunked", budget)):
        out = work / mode
        root = uncal.name.replace("_uncal.fits", "")
        inputs = {"calwebb_detector1": uncal, "calwebb_image2": out / f"{root}_rateints.fits"}
        for stage in ("calwebb_detector1", "calwebb_image2"):
            wall, peak, text = run_child(["--child", stage, str(inputs[stage]), str(out), str(b)], env)
            chunks = [ln for ln in text.splitlines() if "chunk(s)" in ln]
            rows[(stage, mode)] = (wall, peak)
            print(f"  {stage:18s} {mode:9s}: {wall:6.1f} s, peak RSS {peak:6.0f} MiB"
                  + (f"  [{'; '.join(c.split(': ', 2)[-1] for c in chunks)}]" if chunks else ""))
        if mode == "in-memory":
            asn = [a for a in info["associations"] if "_tso3_" in Path(a).name][0]
            shutil.copy(asn, out / Path(asn).name)
            wall, peak, _ = run_child(["--child", "calwebb_tso3", str(out / Path(asn).name), str(out), str(b)], env)
            rows[("calwebb_tso3", mode)] = (wall, peak)
            print(f"  {'calwebb_tso3':18s} {mode:9s}: {wall:6.1f} s, peak RSS {peak:6.0f} MiB (not chunkable)")
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child_run(argv[1], argv[2], argv[3], float(argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--ngroups", type=int, default=3)
    parser.add_argument("--budget", type=float, default=64.0, help="memory budget of the chunked runs, MiB")
    parser.add_argument("--workdir", default="bench-memory")
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    results = {n: run_case(n, args.ngroups, args.budget, args.workdir) for n in args.nints}
    if len(results) >= 2:
        (n0, r0), (n1, r1) = list(results.items())[0], list(results.items())[-1]
        print(f"\n=== peak RSS growth from {n0} to {n1} integrations")
        for key in r0:
            p0, p1 = r0[key][1], r1[key][1]
            print(f"  {key[0]:18s} {key[1]:9s}: {p0:6.0f} -> {p1:6.0f} MiB ({100 * (p1 - p0) / p0:+.1f} %, "
                  f"{(p1 - p0) / (n1 - n0) * 1024:.1f} KiB per integration)")


if __name__ == "__main__":
    main()
