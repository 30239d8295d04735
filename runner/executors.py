"""Executors: where the work items of a batch run.

:func:`run_batch` is the batch driver behind ``run-recipe run ... --executor``:

- ``local`` (the default): every work item in this process, one after the other;
- ``processes``: a pool of worker processes of the standard library (``--workers N``);
- ``dask``: a ``dask.distributed`` cluster, a new ``LocalCluster`` of ``--workers N`` processes
  or the scheduler at ``--scheduler ADDRESS``.

Stage 1 and stage 2 fan out per exposure; in a chain, an exposure's stage-2 task is submitted as
soon as its stage-1 product is made. Stage 3 runs per association product once the previous
stage of every member is finished. The driver prepares every work item before it is submitted
(CRDS context, parameter references, reference files: resolved once, in the driver); a task gets
a small, picklable description of the plan, not the recipe, and returns a small dict (paths,
status, timings, memory), never arrays. Workers run with ``WEBBCAL_MAX_CORES=1`` (one core per
worker for in-step parallelism) and the driver's ``CRDS_PATH``.

A failing work item does not stop the batch; an item whose final product already exists with
the configuration hash computed now is skipped (see :mod:`runner.manifest`), and the run
writes a manifest in the output folder.
"""
from __future__ import annotations

import concurrent.futures as cf
import importlib
import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, WebbcalError
from .execute import RunResult, expand_inputs, prepare, write_association
from .hooks import StepRecord

log = logging.getLogger("webbcal.batch")

EXECUTORS = ("local", "processes", "dask")
#: environment a worker gets from the driver (when set there), besides WEBBCAL_MAX_CORES=1
PASSED_ENV = ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_OBSERVATORY", "CRDS_MODE", "CRDS_REF_SUBDIR_MODE",
              "WEBBCAL_MEMORY_BUDGET")
MAX_ATTEMPTS = 3


# =============================================================================================
# The task: what travels to a worker and what comes back
# =============================================================================================
def plan_spec(prepared):
    """A picklable description of a :class:`~runner.execute.Prepared` plan.

    Step classes travel as ``module:qualname`` and parameters as plain dicts; the worker
    rebuilds the plan and checks that it has the same configuration hash.
    """
    steps = []
    for rs in prepared.plan:
        cls = rs.step_class
        steps.append({
            "alias": rs.alias,
            "class": None if cls is None else f"{cls.__module__}:{cls.__qualname__}",
            "params": rs.params.model_dump(),
        })
    return {
        "recipe_name": prepared.recipe_name, "context": prepared.context,
        "context_source": prepared.context_source, "variants": list(prepared.variants),
        "steps": steps, "references": prepared.references,
        "reference_sources": prepared.reference_sources, "config_hash": prepared.config_hash,
        "output_suffix": prepared.output_suffix,
    }


def _load_class(ref, alias):
    from . import registry

    module, _, qualname = ref.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError):
        return registry.get(alias)


def rebuild_prepared(spec):
    """The :class:`~runner.execute.Prepared` of a :func:`plan_spec` (in a worker).

    Raises
    ------
    WebbcalError
        The worker's step plugins resolve to a different configuration hash than the driver's.
    """
    from . import provenance
    from .execute import Prepared
    from .recipe import ResolvedStep
    from .step import StepParameters

    plan = []
    for s in spec["steps"]:
        if s["class"] is None:
            plan.append(ResolvedStep(s["alias"], None, StepParameters(**s["params"]), {}, available=False))
            continue
        cls = _load_class(s["class"], s["alias"])
        params = cls.parameter_model()(**s["params"])
        plan.append(ResolvedStep(s["alias"], cls, params, {}))
    chash = provenance.config_hash(spec["recipe_name"], spec["context"], plan, spec["references"])
    if chash != spec["config_hash"]:
        raise WebbcalError(
            f"worker {socket.gethostname()}: the plan resolves to configuration hash {chash[:12]}, "
            f"not the driver's {spec['config_hash'][:12]} (different step plugins installed on the worker?)")
    return Prepared(spec["recipe_name"], spec["context"], spec["context_source"], spec["variants"], plan,
                    spec["references"], spec["reference_sources"], spec["config_hash"], spec["output_suffix"])


def run_task(task, hooks=(), in_worker=True):
    """Run one work item in a worker; returns a small dict (no arrays).

    Parameters
    ----------
    task : dict
        ``label``, ``input`` (file, or None for a stage-3 association product), ``asn`` and
        ``asn_product`` (association file and product name, or None), ``stage3`` (bool),
        ``plan`` (:func:`plan_spec`), ``output_dir`` and ``env`` (environment to set).
    hooks : sequence
        Extra lifecycle hooks (in-process executor only).
    in_worker : bool
        Set ``WEBBCAL_MAX_CORES=1`` and the driver's environment in this process.

    Returns
    -------
    dict
        ``label, status ('done'|'failed'), outputs, main_output, error, config_hash, seconds,
        peak_rss_mb, worker, records``.
    """
    from .hooks import MemorySampler, TimingHook

    if in_worker:
        os.environ.update(task.get("env") or {})
        os.environ["WEBBCAL_MAX_CORES"] = "1"
    t0 = time.perf_counter()
    out = {"label": task["label"], "status": "done", "outputs": [], "main_output": None, "error": None,
           "config_hash": task["plan"]["config_hash"], "seconds": 0.0, "peak_rss_mb": 0.0,
           "worker": f"{socket.gethostname()}:{os.getpid()}", "records": []}
    sampler = MemorySampler(interval=0.01)
    with sampler:
        try:
            result = _execute_task(task, [TimingHook(), *hooks])
            out["outputs"] = [str(p) for p in result.outputs]
            out["main_output"] = result.main_output
            out["records"] = [vars(r).copy() for r in result.records]
        except WebbcalError as exc:
            out["status"], out["error"] = "failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - a batch never stops for one item
            msg = str(exc).splitlines()[0] if str(exc) else ""
            out["status"], out["error"] = "failed", f"{task['label']}: {type(exc).__name__}: {msg}"
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = sampler.peak
    return out


def _execute_task(task, hooks):
    from .association import Association
    from .execute import execute_plan

    prepared = rebuild_prepared(task["plan"])
    path = work = None
    if task.get("stage3"):
        from .product_set import ProductSet

        asn = Association.load(task["asn"])
        product = ProductSet.from_association(asn, _asn_product(asn, task["asn_product"]))
        product.working_dir = Path(task["output_dir"]) / ".webbcal-work" / product.name
        work = product.working_dir
    else:
        from .chunked import open_input

        path = Path(task["input"])
        product = open_input(path)
        if task.get("asn"):
            asn = Association.load(task["asn"])
            product.association = asn
            product.asn_product = _asn_product(asn, task["asn_product"])
    holder = [product]
    del product          # execute_plan holds the only reference: a converted raw input is freed
    from .execute import _remove_working_dir

    try:
        result = execute_plan(prepared, holder.pop(), output_dir=task["output_dir"], hooks=hooks,
                              save=True, input_path=path)
    finally:
        _remove_working_dir(work)
    result.product = None
    return result


def _asn_product(asn, name):
    for prod in asn.products:
        if prod.name == name:
            return prod
    raise InputError(f"{asn.path}: no product named '{name}'")


# =============================================================================================
# Backends: submit a task, wait for the first finished ones
# =============================================================================================
class _LocalBackend:
    """Runs each task when it is submitted, in this process."""

    name = "local"

    def __init__(self, hooks=()):
        self.hooks = list(hooks)
        self.workers = 1
        self.address = None

    def submit(self, task):
        fut = cf.Future()
        fut.set_result(run_task(task, hooks=self.hooks, in_worker=False))
        return fut

    def wait_any(self, pending):
        return set(pending)

    def close(self):
        pass


def _pool_init(env):
    os.environ.update(env)
    os.environ["WEBBCAL_MAX_CORES"] = "1"


class _ProcessBackend:
    """A standard-library process pool; a pool broken by a dead worker is replaced."""

    name = "processes"

    def __init__(self, workers, env):
        self.workers = workers
        self.env = env
        self.address = None
        self._pool = self._new_pool()

    def _new_pool(self):
        import multiprocessing

        return cf.ProcessPoolExecutor(max_workers=self.workers, initializer=_pool_init, initargs=(self.env,),
                                      mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task):
        return self._pool.submit(run_task, task)

    def wait_any(self, pending):
        done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        return done

    def is_lost_worker(self, exc):
        from concurrent.futures.process import BrokenProcessPool

        if isinstance(exc, BrokenProcessPool):
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return True
        return False

    def close(self):
        self._pool.shutdown(wait=True)


class _DaskBackend:
    """A ``dask.distributed`` client: a new LocalCluster, or an existing scheduler."""

    name = "dask"

    def __init__(self, workers, env, scheduler=None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover
            raise WebbcalError(f"the dask executor needs dask.distributed: pip install 'dask[distributed]' ({exc})") from None
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except Exception as exc:  # noqa: BLE001
                raise WebbcalError(f"cannot connect to the dask scheduler at {scheduler}: {exc}") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, env=dict(env, WEBBCAL_MAX_CORES="1"),
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self.address = self.client.scheduler.address
        self.workers = len(self.client.scheduler_info().get("workers", {})) or workers

    def submit(self, task):
        key = f"webbcal-{task['label'][-60:]}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(run_task, task, key=key, pure=False)

    def wait_any(self, pending):
        from distributed import wait

        done, _ = wait(list(pending), return_when="FIRST_COMPLETED")
        return set(done)

    def is_lost_worker(self, exc):
        return False  # the scheduler already reran it elsewhere (up to allowed-failures times)

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _worker_env():
    return {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}


# =============================================================================================
# The driver
# =============================================================================================
@dataclass
class _Node:
    stage: int
    order: tuple
    item: object               # runner.execute.WorkItem
    label: str
    result: RunResult | None = None
    task: dict | None = None
    attempts: int = 0
    extra: dict = field(default_factory=dict)


def run_batch(recipe, inputs, *, executor="local", workers=None, scheduler=None, overrides=None,
              output_dir=".", crds_context=None, apply_crds_pars=True, locked=None, resume=True,
              hooks=(), write_manifest=True):
    """Run a recipe (or chain) on a batch of inputs with an executor.

    Parameters
    ----------
    recipe : runner.recipe.Recipe
    inputs : list of str or Path
        Exposures and association files.
    executor : {'local', 'processes', 'dask'}
    workers : int, optional
        Worker processes (processes, or a new dask LocalCluster); default: one per core.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``); implies ``executor='dask'``.
    overrides : dict, optional
        ``{alias: {param: value}}``.
    output_dir : str or Path
        Folder for products and the manifest.
    crds_context : str, optional
        CRDS context when the recipe is not pinned.
    apply_crds_pars : bool
        Apply CRDS ``pars-*`` parameter references.
    locked : dict, optional
        A lock document (:func:`runner.lock.read_lock`); items that differ fail.
    resume : bool
        Skip items whose final product is up to date (same ``WC_CHASH``).
    hooks : sequence
        Lifecycle hooks for the local executor.
    write_manifest : bool
        Write ``<output_dir>/<recipe>.manifest.json``.

    Returns
    -------
    list of RunResult
        Stage by stage, in input order; ``status`` done, failed or skipped; ``product`` None.
    """
    from .manifest import Manifest, manifest_path

    if scheduler:
        executor = "dask"
    if executor not in EXECUTORS:
        raise WebbcalError(f"unknown executor '{executor}'; choose one of {', '.join(EXECUTORS)}")
    output_dir = Path(output_dir)
    overrides = overrides or {}
    stages = _stages(recipe, overrides)
    first = expand_inputs(stages[0][0], inputs)
    if not first:
        raise InputError("no inputs")
    nworkers = max(1, workers or min(len(first), os.cpu_count() or 1))
    env = _worker_env()
    if executor == "local":
        backend = _LocalBackend(hooks)
    elif executor == "processes":
        backend = _ProcessBackend(nworkers, env)
    else:
        backend = _DaskBackend(nworkers, env, scheduler)
    manifest = Manifest(manifest_path(output_dir, recipe), recipe,
                        {"name": backend.name, "workers": backend.workers, "scheduler": backend.address},
                        overrides=overrides, stages=stages) if write_manifest else None
    driver = _Driver(stages, backend, manifest, output_dir=output_dir, crds_context=crds_context,
                     apply_crds_pars=apply_crds_pars, locked=locked, resume=resume, env=env)
    try:
        driver.run(first)
    finally:
        backend.close()
        if manifest is not None:
            manifest.write(finished=True)
    return driver.results()


def _stages(recipe, overrides):
    if not recipe.is_chain:
        return [(recipe, overrides)]
    out = []
    for sub, stage_overrides in recipe.chain_stages():
        merged = {a: dict(v) for a, v in stage_overrides.items()}
        for alias, vals in overrides.items():
            if alias in sub.all_step_aliases():
                merged.setdefault(alias, {}).update(vals)
        out.append((sub, merged))
    return out


class _Driver:
    def __init__(self, stages, backend, manifest, *, output_dir, crds_context, apply_crds_pars, locked,
                 resume, env):
        self.stages = stages
        self.backend = backend
        self.manifest = manifest
        self.output_dir = output_dir
        self.crds_context = crds_context
        self.apply_crds_pars = apply_crds_pars
        self.locked = locked
        self.resume = resume
        self.env = env
        self.nodes = [[] for _ in stages]       # per stage, every node created
        self.closed = [False] * len(stages)
        self.started = [s == 0 for s in range(len(stages))]
        self.pending = {}                       # future -> node

    # -- stage structure ------------------------------------------------------------------------
    def _stage_no(self, s):
        return self.stages[s][0].stage or 1

    def _pipelined(self, s):
        """Stage ``s`` takes its inputs one exposure at a time from stage ``s - 1``."""
        return s > 0 and self._stage_no(s) < 3 and self._stage_no(s - 1) < 3

    # -- main loop ------------------------------------------------------------------------------
    def run(self, first_items):
        for i, item in enumerate(first_items):
            self._start(_Node(0, (i,), item, _label(item)))
        self._close_stages()
        while self.pending:
            for fut in self.backend.wait_any(set(self.pending)):
                node = self.pending.pop(fut)
                self._collect(node, fut)
            self._close_stages()
        self._close_stages()

    def results(self):
        out = []
        for stage_nodes in self.nodes:
            out.extend(n.result for n in sorted(stage_nodes, key=lambda n: n.order) if n.result is not None)
        return out

    # -- one node -------------------------------------------------------------------------------
    def _start(self, node):
        self.nodes[node.stage].append(node)
        sub, overrides = self.stages[node.stage]
        try:
            product = self._header_product(node.item, sub)
            prepared = prepare(sub, product.meta, overrides=overrides, crds_context=self.crds_context,
                               apply_crds_pars=self.apply_crds_pars, source=node.label)
            if self.locked is not None:
                from .lock import check_against_lock

                check_against_lock(self.locked, node.label, prepared)
        except WebbcalError as exc:
            self._finish(node, RunResult(input=node.label, status="failed", error=_one_line(exc)))
            return
        if self.manifest is not None:
            try:
                self.manifest.add_lock(node.label, prepared)
            except OSError as exc:
                log.warning("%s: cannot hash a reference file for the manifest (%s)", node.label, exc)
        suffix = prepared.output_suffix or (prepared.plan[-1].alias if prepared.plan else "out")
        main = self.output_dir / f"{product.rootname}_{suffix}.fits"
        if self.resume:
            from .manifest import resume_decision

            previous = self.manifest.previous_entry(node.label) if self.manifest is not None else None
            action, why = resume_decision(prepared.config_hash, main, previous)
            if action == "skip":
                log.info("%s: skipped: %s", node.label, why)
                products = (previous or {}).get("products") or [str(main)]
                res = RunResult(input=node.label, status="skipped", outputs=[str(p) for p in products],
                                config_hash=prepared.config_hash, main_output=str(main))
                node.extra["note"] = why
                self._finish(node, res)
                return
            if action == "redo":
                log.warning("%s: %s", node.label, why)
                node.extra["note"] = why
        item = node.item
        stage3 = item.association is not None and self._stage_no(node.stage) >= 3
        node.task = {
            "label": node.label,
            "input": None if stage3 else str(item.path),
            "asn": str(item.association.path) if item.association is not None else None,
            "asn_product": item.asn_product.name if item.asn_product is not None else None,
            "stage3": stage3,
            "plan": plan_spec(prepared),
            "output_dir": str(self.output_dir),
            "env": self.env,
        }
        self._submit(node)

    def _submit(self, node):
        node.attempts += 1
        self.pending[self.backend.submit(node.task)] = node

    def _header_product(self, item, sub):
        """Something with ``.meta`` and ``.rootname`` for ``prepare``, without reading the data."""
        from .product import Product

        if item.association is not None and (sub.stage or 1) >= 3:
            from .product_set import ProductSet

            return ProductSet.from_association(item.association, item.asn_product)
        return _HeaderOnly(item.path) if Path(item.path).suffix.lower() in (".fits", ".fit") else Product.open(item.path)

    def _collect(self, node, fut):
        try:
            out = fut.result()
        except Exception as exc:  # noqa: BLE001 - the task's process died, or the cluster gave up on it
            lost = getattr(self.backend, "is_lost_worker", lambda e: False)(exc)
            if lost and node.attempts < MAX_ATTEMPTS:
                log.warning("%s: worker lost (%s); resubmitting", node.label, type(exc).__name__)
                self._submit(node)
                return
            out = {"status": "failed", "error": f"{node.label}: worker failed: {type(exc).__name__}: "
                   f"{_one_line(exc)}", "outputs": [], "main_output": None, "records": [],
                   "config_hash": node.task["plan"]["config_hash"], "seconds": 0.0, "peak_rss_mb": 0.0,
                   "worker": None}
        res = RunResult(input=node.label, status=out["status"], outputs=list(out["outputs"]),
                        error=out["error"], config_hash=out["config_hash"], main_output=out["main_output"],
                        records=[StepRecord(**r) for r in out["records"]])
        node.extra.update(seconds=out["seconds"], peak_rss_mb=out["peak_rss_mb"], worker=out["worker"])
        self._finish(node, res)

    def _finish(self, node, result):
        node.result = result
        if result.status == "failed":
            log.error("%s", result.error)
        if self.manifest is not None:
            self.manifest.record(_entry(node, self.stages[node.stage][0].name))
        nxt = node.stage + 1
        if (nxt < len(self.stages) and self._pipelined(nxt) and result.status in ("done", "skipped")
                and result.main_output):
            for j, item in enumerate(expand_inputs(self.stages[nxt][0], [result.main_output])):
                self._start(_Node(nxt, node.order + (j,), item, _label(item)))

    # -- barriers ---------------------------------------------------------------------------------
    def _close_stages(self):
        """Close finished stages; start a barrier stage once the stage before it is closed."""
        for s in range(len(self.stages)):
            if self.closed[s]:
                continue
            if s > 0 and not self.closed[s - 1]:
                return
            if not self.started[s]:
                self.started[s] = True
                if not self._pipelined(s):
                    self._start_barrier_stage(s)
            if all(n.result is not None for n in self.nodes[s]):
                self.closed[s] = True
            else:
                return

    def _start_barrier_stage(self, s):
        sub = self.stages[s][0]
        prev = sorted(self.nodes[s - 1], key=lambda n: n.order)
        current = [n.result.main_output for n in prev
                   if n.result.status in ("done", "skipped") and n.result.main_output]
        failed = [n for n in prev if n.result.status == "failed"]
        if failed and current:
            log.warning("%s: %d of %d inputs failed in the previous stage; going on without them",
                        sub.name, len(failed), len(prev))
        try:
            from .association import is_association

            if (sub.stage or 1) >= 3 and self._stage_no(s - 1) < 3 and not any(is_association(c) for c in current):
                current = [str(write_association(current, sub, self.output_dir))]
            items = expand_inputs(sub, current)
        except WebbcalError as exc:
            node = _Node(s, (0,), None, f"{sub.name}")
            self.nodes[s].append(node)
            self._finish(node, RunResult(input=node.label, status="failed", error=_one_line(exc)))
            return
        for j, item in enumerate(items):
            self._start(_Node(s, (j,), item, _label(item)))


class _HeaderOnly:
    """A FITS input's primary header (for ``prepare``), read without the data."""

    def __init__(self, path):
        from astropy.io import fits

        from .product import rootname

        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a FITS file")
        if path.stat().st_size == 0:
            raise InputError(f"{path}: file is empty")
        with open(path, "rb") as fh:
            if not fh.read(30).startswith(b"SIMPLE  ="):
                raise InputError(f"{path}: not a FITS file (no SIMPLE card at the start)")
        try:
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                hdul[0].verify("silentfix")
                self.meta = hdul[0].header.copy()
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{path}: cannot read FITS header ({_one_line(exc)}); is it truncated or corrupt?") from None
        self.rootname = rootname(path.name)


def _label(item):
    return item.label


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _entry(node, stage_name):
    r = node.result
    return {
        "label": node.label,
        "stage": stage_name,
        "input": node.task["input"] if node.task else (str(node.item.path) if node.item is not None else None),
        "status": r.status,
        "error": r.error,
        "note": node.extra.get("note"),
        "config_hash": r.config_hash,
        "seconds": round(node.extra.get("seconds", 0.0), 3),
        "peak_rss_mb": round(node.extra.get("peak_rss_mb", 0.0), 1),
        "worker": node.extra.get("worker"),
        "attempts": node.attempts,
        "main_product": r.main_output,
        "products": list(r.outputs),
        "steps": [{"name": rec.name, "status": rec.status, "seconds": round(rec.seconds, 3),
                   "peak_rss_mb": round(rec.peak_rss_mb, 1), "message": rec.message} for rec in r.records],
    }


# =============================================================================================
# Summary table
# =============================================================================================
def format_batch_summary(results):
    """The end-of-batch table: one line per item (status, seconds, cause or products), then counts."""
    lines = [f"{'status':<8} {'seconds':>8}  input"]
    counts = {"done": 0, "failed": 0, "skipped": 0}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        secs = sum(rec.seconds for rec in r.records)
        shown = f"{secs:8.2f}" if r.records else f"{'-':>8}"
        if r.status == "failed":
            text = r.error if str(r.error).startswith(str(r.input)) else f"{r.input}: {r.error}"
        elif r.main_output:
            text = f"{r.input} -> {Path(r.main_output).name}"
        else:
            text = str(r.input)
        lines.append(f"{r.status:<8} {shown}  {text}")
    lines.append(f"{len(results)} items: {counts['done']} done, {counts['failed']} failed, "
                 f"{counts['skipped']} skipped")
    return "\n".join(lines)


def run_in_processes(recipe, inputs, *, overrides=None, output_dir=".", crds_context=None,
                     apply_crds_pars=True, workers=None, locked_path=None):
    """Run every exposure of a batch in a pool of worker processes (kept for callers of 0.1)."""
    from .lock import read_lock

    locked = read_lock(locked_path) if locked_path else None
    return run_batch(recipe, inputs, executor="processes", workers=workers, overrides=overrides,
                     output_dir=output_dir, crds_context=crds_context, apply_crds_pars=apply_crds_pars,
                     locked=locked)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use run-recipe run ... --executor")
