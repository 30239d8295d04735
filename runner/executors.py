"""Executors: where the work items of a batch run.

``local`` (the default) runs in this process (:func:`runner.execute.run_recipe`); ``processes``
runs one exposure per worker process with the standard library. Tasks return small results
(paths, status, timings), never arrays; in-step parallelism is one core per worker.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .execute import RunResult, expand_inputs


def _run_one(recipe_ref, path, overrides, output_dir, crds_context, apply_crds_pars, locked_path):
    os.environ["WEBBCAL_MAX_CORES"] = "1"
    from .execute import run_recipe
    from .lock import read_lock
    from .recipe import Recipe

    recipe = Recipe.load(recipe_ref)
    locked = read_lock(locked_path) if locked_path else None
    results = run_recipe(recipe, [path], overrides=overrides, output_dir=output_dir,
                         crds_context=crds_context, apply_crds_pars=apply_crds_pars,
                         raise_on_error=False, locked=locked)
    for r in results:
        r.product = None
    return results


def run_in_processes(recipe, inputs, *, overrides=None, output_dir=".", crds_context=None,
                     apply_crds_pars=True, workers=None, locked_path=None):
    """Run every exposure of a batch in a pool of worker processes; results in input order."""
    recipe_ref = str(recipe.path) if recipe.path else recipe.name
    items = expand_inputs(recipe, inputs)
    paths = [str(i.path) if (recipe.stage or 1) < 3 else str(i.path) for i in items]
    if (recipe.stage or 1) >= 3:
        paths = sorted(set(paths))
    workers = workers or min(len(paths), os.cpu_count() or 1)
    results = [None] * len(paths)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(_run_one, recipe_ref, p, overrides, output_dir, crds_context,
                               apply_crds_pars, locked_path): i for i, p in enumerate(paths)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except Exception as exc:  # a worker that died
                results[i] = [RunResult(input=paths[i], status="failed", error=f"worker failed: {exc}")]
    return [r for group in results for r in group]
