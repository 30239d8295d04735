"""Benchmark: outlier_detection + resample on full-frame (2048x2048) synthetic cal images.

Prints wall time and peak resident memory of each step for 4 and for 8 inputs. Each run is a
fresh subprocess (peak RSS is per process); memory is sampled every 20 ms from
``/proc/self/status`` and reported as the increase over the resident size before the step.
With streaming, the peak should be the output mosaic plus about one exposure, not grow with
the number of inputs.

Usage::

    python benchmarks/bench_image3.py            # 4 and 8 inputs
    python benchmarks/bench_image3.py --n 8 --size 2048 --keep /tmp/bench
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DITHERS = [(0, 0), (24.5, 11.25), (-17.25, 30.5), (9.75, -27.5), (40.5, 5.25), (-35.25, -12.5),
           (15.5, 44.75), (-8.25, -41.5)]


def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class PeakSampler:
    """Peak RSS (MB) while a block runs, sampled every ``interval`` s."""

    def __init__(self, interval=0.02):
        self.interval = interval

    def __enter__(self):
        self.base = rss_mb()
        self.peak = self.base
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        return self

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, rss_mb())


def generate(folder, n, size):
    """Write ``n`` cal files (sky + noise + cosmic rays, gwcs) into ``folder``."""
    from tests.steps.test_resample import make_wcs, PSCALE, RA0, DEC0
    from astropy.io import fits
    from runner import Product
    from steps.resample.output_grid import mean_pixel_area

    rng = np.random.default_rng(0)
    paths = []
    roll = 20.0
    t = np.radians(roll)
    for i in range(n):
        ox, oy = DITHERS[i % len(DITHERS)]
        dxi = (-np.cos(t) * ox + np.sin(t) * oy) * PSCALE / 3600.0
        deta = (np.sin(t) * ox + np.cos(t) * oy) * PSCALE / 3600.0
        wcs = make_wcs((size, size), ra=RA0 + dxi / np.cos(np.radians(DEC0)), dec=DEC0 + deta,
                       roll=roll, distortion=2.0)
        sci = (0.5 + rng.normal(0, 0.05, (size, size))).astype(np.float32)
        ncr = size * size // 2000
        sci[rng.integers(0, size, ncr), rng.integers(0, size, ncr)] += 5.0
        meta = fits.Header()
        meta.update(EXP_TYPE="NRC_IMAGE", INSTRUME="NIRCAM", DETECTOR="NRCA1", TSOVISIT=False,
                    EFFEXPTM=100.0, EXPSTART=60000.0 + i, EXPEND=60000.01 + i,
                    PIXAR_SR=mean_pixel_area(wcs, (size, size)))
        shape = (size, size)
        arrays = {"SCI": sci, "ERR": np.full(shape, 0.05, np.float32), "DQ": np.zeros(shape, np.uint32),
                  "VAR_POISSON": np.full(shape, 1.25e-3, np.float32),
                  "VAR_RNOISE": np.full(shape, 1.25e-3, np.float32),
                  "VAR_FLAT": np.zeros(shape, np.float32), "AREA": np.ones(shape, np.float32)}
        sci_hdr = fits.Header()
        sci_hdr["BUNIT"] = "MJy/sr"
        prod = Product("image", meta, arrays, {}, {"SCI": sci_hdr},
                       filename=f"jw01000001001_01101_{i + 1:05d}_nrca1_cal.fits", wcs=wcs)
        paths.append(str(prod.save(Path(folder) / prod.filename)))
    return paths


def run_steps(paths, workdir):
    """Run outlier_detection then resample on a ProductSet of ``paths``; returns figures."""
    from runner.association import Member
    from runner.product_set import ProductSet
    from steps.outlier_detection.step import OutlierDetectionStep
    from steps.resample.step import ResampleStep

    pset = ProductSet("jw01000-o001_t001_nircam_clear-f200w", [Member(Path(p), "science") for p in paths])
    pset.working_dir = Path(workdir)
    figures = {"n": len(paths), "rss_start_mb": rss_mb()}
    with PeakSampler() as s:
        step = OutlierDetectionStep()
        pset = step.process(pset)
        del step
    figures["outlier_detection"] = {"wall_s": s.wall, "peak_mb": s.peak, "increase_mb": s.peak - s.base}
    with PeakSampler() as s:
        i2d = ResampleStep().process(pset)
    figures["resample"] = {"wall_s": s.wall, "peak_mb": s.peak, "increase_mb": s.peak - s.base,
                           "mosaic_shape": list(i2d.data.shape)}
    mosaic_mb = sum(a.nbytes for a in i2d.arrays.values()) / 2 ** 20
    figures["mosaic_arrays_mb"] = mosaic_mb
    figures["exposure_arrays_mb"] = Path(paths[0]).stat().st_size / 2 ** 20
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="*", default=[4, 8], help="numbers of inputs")
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--keep", help="folder for the synthetic files (default: a temporary one)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        paths = sorted(str(p) for p in Path(args.data).glob("*_cal.fits"))[: args.n[0]]
        with tempfile.TemporaryDirectory(dir=args.data) as work:
            print(json.dumps(run_steps(paths, work)))
        return
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_image3_"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    generate(folder, max(args.n), args.size)
    print(f"generated {max(args.n)} synthetic {args.size}x{args.size} cal files in "
          f"{time.perf_counter() - t0:.1f} s ({folder})")
    print(f"{'inputs':>6} {'step':>18} {'wall s':>8} {'peak RSS MB':>12} {'increase MB':>12}")
    for n in args.n:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, __file__, "--child", "--n", str(n), "--data", str(folder)],
                             capture_output=True, text=True, env=env, check=True)
        fig = json.loads(out.stdout.strip().splitlines()[-1])
        for step in ("outlier_detection", "resample"):
            f = fig[step]
            print(f"{n:>6} {step:>18} {f['wall_s']:>8.1f} {f['peak_mb']:>12.0f} {f['increase_mb']:>12.0f}")
        print(f"{'':>6} mosaic {fig['resample']['mosaic_shape']}: output arrays {fig['mosaic_arrays_mb']:.0f} MB; "
              f"one exposure file {fig['exposure_arrays_mb']:.0f} MB")
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
