"""Time a batch of simulated exposures through calwebb_detector1 on dask with 1 and N workers.

Usage: ``python benchmarks/bench_batch.py [--n 16] [--workers 1 2] [--size tiny] [--executor dask]``

Simulates ``--n`` NIRCam imaging exposures (distinct file names, several seeds), builds their
local CRDS cache, then for each worker count starts a ``distributed.LocalCluster`` (processes,
one thread each), warms it up (imports, numba JIT) on two exposures, and times the batch
(``run_batch(..., resume=False)``, best of ``--repeat``) with the cluster already running. Prints seconds, exposures
per second, the speed-up over the first worker count, and the run's peak worker memory from the
manifest. Also prints the wall time including the cluster start.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def simulate_batch(root, n, size):
    """``n`` uncal files with distinct exposure numbers, and their CRDS cache."""
    from simulator import crds_cache, modes

    sets, files = [], []
    seed = 0
    while len(files) < n:
        sset = modes.simulate("nircam_image", root / f"seed{seed}", size=size, seed=seed)
        sets.append(sset)
        files += [Path(p) for p in sset.exposures]
        seed += 1
    inputs = root / "inputs"
    inputs.mkdir()
    out = []
    for i, src in enumerate(files[:n]):
        dst = inputs / re.sub(r"_\d{5}_(?=[a-z]+\d*_uncal)", f"_{i + 1:05d}_", src.name)
        shutil.copyfile(src, dst)
        out.append(dst)
    cache = crds_cache.build_crds_cache(root / "crds_cache", modes.configurations(sets))
    return out, cache


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="exposures in the batch")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--size", choices=("tiny", "demo"), default="tiny")
    ap.add_argument("--executor", choices=("dask", "processes"), default="dask")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per worker count (the best is shown)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import distributed  # noqa: F401 - configures its loggers, which are quietened next

    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("distributed", "webbcal", "crds", "tornado", "bokeh")):
            logging.getLogger(name).setLevel(logging.ERROR)

    root = Path(tempfile.mkdtemp(prefix="webbcal-bench-batch-"))
    try:
        inputs, cache = simulate_batch(root, args.n, args.size)
        os.environ["CRDS_PATH"] = str(cache)
        os.environ.pop("CRDS_SERVER_URL", None)
        from distributed import LocalCluster

        from runner.executors import run_batch
        from runner.manifest import manifest_path
        from runner.recipe import Recipe

        recipe = Recipe.load("calwebb_detector1")
        print(f"calwebb_detector1 on {len(inputs)} '{args.size}' NIRCam exposures, executor {args.executor}, "
              f"{os.cpu_count()} CPU cores")
        print(f"{'workers':>7} {'seconds':>8} {'exp/s':>7} {'speed-up':>8} {'peak MiB/worker':>15} "
              f"{'with start (s)':>14} {'driver only (s)':>15}")
        base = None
        for n in args.workers:
            t0 = time.perf_counter()
            if args.executor == "dask":
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
                kw = {"scheduler": cluster.scheduler_address}
            else:
                cluster, kw = None, {"executor": "processes", "workers": n}
            start = time.perf_counter() - t0
            try:
                run_batch(recipe, inputs[:max(2, n)], output_dir=root / f"warm{n}", crds_context="jwst_0001.pmap",
                          resume=False, **kw)
                secs = float("inf")
                for _ in range(args.repeat):
                    t1 = time.perf_counter()
                    results = run_batch(recipe, inputs, output_dir=root / f"out{n}", crds_context="jwst_0001.pmap",
                                        resume=False, **kw)
                    secs = min(secs, time.perf_counter() - t1)
                doc = json.loads(manifest_path(root / f"out{n}", recipe).read_text())
                peak = max(i["peak_rss_mb"] for i in doc["items"])
                t1 = time.perf_counter()
                run_batch(recipe, inputs, output_dir=root / f"out{n}", crds_context="jwst_0001.pmap", **kw)
                driver = time.perf_counter() - t1
            finally:
                if cluster is not None:
                    cluster.close()
            bad = [r for r in results if r.status != "done"]
            if bad:
                print(f"  {len(bad)} failed: {bad[0].error}")
            base = base or secs
            print(f"{n:>7} {secs:8.2f} {len(inputs) / secs:7.2f} {base / secs:8.2f} {peak:15.0f} "
                  f"{secs + start:14.2f} {driver:15.2f}", flush=True)
        print("seconds: best of --repeat batch runs on a started, warmed-up cluster; driver only: a re-run "
              "where every product is up to date (prepare + resume check, no task)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
