"""``run-recipe demo``: simulate the demo set, build its CRDS cache, run every mode, compare to truth.

Stages whose steps are not built yet are listed as not yet available, naming the missing step.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("webbcal.demo")


def _use_cache(root):
    import crds.core.config
    import crds.core.utils

    os.environ["CRDS_PATH"] = str(root)
    os.environ.pop("CRDS_SERVER_URL", None)
    crds.core.config.CRDS_REF_SUBDIR_MODE = "None"
    crds.core.utils.clear_function_caches()


def rate_figures(rate_path, truth_path):
    """Recovered vs true count rate for one exposure.

    Returns
    -------
    dict
        ``pull_median`` and ``pull_std`` (robust) of (rate - truth) / ERR over good, unsaturated
        pixels; ``bright_ratio``: median rate/truth for pixels above 20 sigma.
    """
    from astropy.io import fits

    from simulator.ramps import RampTruth

    truth = RampTruth.load(truth_path)
    with fits.open(rate_path) as hdul:
        sci, err, dq = hdul["SCI"].data, hdul["ERR"].data, hdul["DQ"].data
    true_rate = truth.rate_dn.mean(axis=0)
    ok = (dq & 1) == 0
    ok &= np.isfinite(sci) & (err > 0)
    ok &= (truth.saturated_group < 0).all(axis=0)
    pull = (sci[ok] - true_rate[ok]) / err[ok]
    mad = np.median(np.abs(pull - np.median(pull))) * 1.4826
    bright = ok & (true_rate > 20 * err)
    ratio = float(np.median(sci[bright] / true_rate[bright])) if bright.any() else float("nan")
    return {"pull_median": float(np.median(pull)), "pull_std": float(mad), "bright_ratio": ratio,
            "pixels": int(ok.sum())}


def run_demo(output_dir="webbcal-demo", *, size="demo", seed=0):
    """Simulate, build the cache, run every mode as far as the installed steps go; print a table."""
    from simulator import crds_cache, modes

    out = Path(output_dir)
    t0 = time.perf_counter()
    if size == "demo":
        sets = modes.demo_set(out / "raw", seed=seed)
    else:
        sets = [modes.simulate(m, out / "raw" / m, size=size, seed=seed) for m in sorted(modes.MODES)]
    t_sim = time.perf_counter() - t0
    cache = crds_cache.build_crds_cache(out / "crds_cache", modes.configurations(sets))
    _use_cache(cache)
    print(f"simulated {sum(len(s.exposures) for s in sets)} exposures in {len(sets)} modes "
          f"({t_sim:.1f} s); CRDS cache {cache}")
    rows = []
    failures = 0
    for sset in sets:
        products = out / "products" / sset.mode
        products.mkdir(parents=True, exist_ok=True)
        for asn in sset.associations:     # members are named relative to the association
            shutil.copy(asn, products / Path(asn).name)
        failures += _run_stage(rows, sset, "calwebb_detector1", list(sset.exposures), products,
                               figures=lambda results: _rate_summary(results, sset))
        by_type = {}
        for asn_path in sorted(products.glob("*_asn.json")):
            by_type.setdefault(json.loads(asn_path.read_text()).get("asn_type"), []).append(asn_path)
        for asn_type in ("image2", "spec2", "image3", "spec3", "tso3", "coron3", "ami3"):
            if asn_type in by_type:
                failures += _run_stage(rows, sset, f"calwebb_{asn_type}", by_type[asn_type], products,
                                       figures=lambda results, a=asn_type: _stage_figures(a, results, sset))
    print()
    print(f"{'mode':<18} {'recipe':<18} {'done':>5} {'sec':>6}  recovered vs true")
    for row in rows:
        print(f"{row[0]:<18} {row[1]:<18} {row[2]:>5} {row[3]:>6}  {row[4]}")
    print(f"\nproducts in {out / 'products'}")
    return 1 if failures else 0


def _run_stage(rows, sset, alias, inputs, products, figures):
    """Run one recipe on inputs (if its steps are installed); add a summary row; return failures."""
    from . import registry
    from .execute import run_recipe
    from .recipe import Recipe

    recipe = Recipe.load(alias)
    header = _first_header(inputs)
    needed = [a for a in recipe.step_sequence(header)
              if not registry.available(a) and not recipe._skipped_by_data(a, recipe.matching_variants(header), {})]
    if needed:
        rows.append((sset.mode, alias, "-", "-", f"not yet available: missing step {needed[0]}"))
        return 0
    from .association import Association, is_association

    for asn in (i for i in inputs if is_association(i)):
        missing_members = [m.path.name for p in Association.load(asn, check_members=False).products
                           for m in p.members if not m.path.exists()]
        if missing_members:
            rows.append((sset.mode, alias, "-", "-",
                         f"not run: {missing_members[0]} was not made (an earlier stage is not available)"))
            return 0
    t1 = time.perf_counter()
    results = run_recipe(recipe, inputs, output_dir=products, raise_on_error=False)
    seconds = time.perf_counter() - t1
    failed = [r for r in results if r.status == "failed"]
    try:
        fig = figures(results) if len(failed) < len(results) else ""
    except Exception as exc:  # noqa: BLE001 - a figure we cannot compute is reported, not fatal
        fig = f"(no figures: {type(exc).__name__}: {exc})"
    if failed:
        fig = (fig + "; " if fig else "") + "FAILED: " + failed[0].error[:160]
    rows.append((sset.mode, alias, f"{len(results) - len(failed)}/{len(results)}", f"{seconds:.1f}", fig or "-"))
    return len(failed)


def _first_header(inputs):
    from astropy.io import fits

    from .association import Association, is_association

    first = inputs[0]
    if is_association(first):
        first = Association.load(first, check_members=False).products[0].members[0].path
    try:
        return fits.getheader(first, 0)
    except OSError:
        return fits.Header()


def _rate_summary(results, sset):
    figures = [rate_figures(r.main_output, truth) for r, truth in zip(results, sset.ramp_truths)
               if r.status == "done" and truth]
    if not figures:
        return ""
    pm = np.median([f["pull_median"] for f in figures])
    ps = np.median([f["pull_std"] for f in figures])
    br = np.nanmedian([f["bright_ratio"] for f in figures])
    return f"rate pull median {pm:+.3f}, robust std {ps:.3f}; bright rate/true {br:.4f}"


def _stage_figures(asn_type, results, sset):
    """Truth comparisons for stage-3 products (catalog fluxes, transit depth)."""
    outputs = [o for r in results for o in r.outputs]
    if asn_type == "image3":
        cats = [o for o in outputs if o.endswith("_cat.ecsv")]
        if cats:
            return catalog_figures(cats[0], sset.truths)
    if asn_type == "tso3":
        phots = [o for o in outputs if o.endswith("_phot.ecsv")]
        if phots:
            return transit_figures(phots[0], sset.truths[0])
    return f"{len(outputs)} products"


def catalog_figures(cat_path, truth_paths):
    """Match catalog sources to the injected ones; median flux ratio and astrometric RMS."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    cat = Table.read(cat_path)
    truth = json.loads(Path(truth_paths[0]).read_text())["scene"]["sources"]
    true_sky = SkyCoord([s["ra"] for s in truth] * u.deg, [s["dec"] for s in truth] * u.deg)
    sky = cat["sky_centroid"]
    idx, sep, _ = sky.match_to_catalog_sky(true_sky)
    ok = sep < 0.1 * u.arcsec
    if not ok.any():
        return f"{len(cat)} sources, none within 0.1 arcsec of an injected one"
    flux = np.asarray(cat["aper_total_flux"])[ok]
    true_flux = np.array([truth[i]["flux_jy"] for i in idx[ok]])
    ratio = np.median(flux / true_flux)
    rms = np.sqrt(np.mean(sep[ok].to_value(u.mas) ** 2))
    return (f"{ok.sum()}/{len(truth)} sources matched; flux/true median {ratio:.4f}; "
            f"astrometric rms {rms:.1f} mas")


def transit_figures(phot_path, truth_path):
    """Transit depth from the light curve (in vs out of transit, truth ephemeris) vs truth."""
    from astropy.table import Table

    table = Table.read(phot_path)
    truth = json.loads(Path(truth_path).read_text())["scene"]
    rel = np.asarray(truth["relative_flux"])
    flux = np.asarray(table["net_aperture_sum"], float)
    if flux.size != rel.size:
        return f"{flux.size} integrations measured, truth has {rel.size}"
    depth_true = float(truth["transit_depth"])
    inside = rel < 1 - 0.8 * depth_true
    outside = rel >= 1 - 1e-9
    if inside.sum() < 2 or outside.sum() < 2:
        return "too few integrations in or out of transit for a depth"
    base = np.mean(flux[outside])
    depth = 1 - np.mean(flux[inside]) / base
    model = 1 - np.mean(rel[inside])
    err = np.std(flux[outside]) / base * np.sqrt(1 / inside.sum() + 1 / outside.sum())
    return f"in-transit depth {depth:.5f} +- {err:.5f} (truth {model:.5f}, {abs(depth - model) / err:.1f} sigma)"
