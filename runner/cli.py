"""``run-recipe``: the command line.

Sub-commands: run, validate, list, show, explain, lock, reproduce, simulate, demo; and the
``strun`` form ``run-recipe calwebb_detector1 x_uncal.fits --steps.jump.rejection_threshold=5``.
Exit status 0, or 1 with a one-line cause on stderr.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import WebbcalError

COMMANDS = ("run", "validate", "list", "show", "explain", "lock", "reproduce", "simulate", "demo")
log = logging.getLogger("webbcal")


class _QuietLibraries(logging.Filter):
    """Drop records of third-party loggers below the chosen level (``-v`` lets them through)."""

    NOISY = ("tweakwcs", "drizzle", "stpipe", "stcal", "photutils")

    def __init__(self, level):
        super().__init__()
        self.level = level

    def filter(self, record):
        return record.levelno >= self.level or not record.name.startswith(self.NOISY)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run-recipe",
        description="Run JWST calibration recipes. Also: run-recipe ALIAS INPUT... (the strun form).")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common_run(p):
        p.add_argument("--set", dest="sets", action="append", default=[], metavar="STEP.PARAM=VALUE",
                       help="override a step parameter (repeatable)")
        p.add_argument("--crds-context", help="CRDS context (.pmap) when the recipe is not pinned")
        p.add_argument("--no-crds-pars", action="store_true",
                       help="do not apply CRDS pars-* parameter references (the jwst .run() behaviour)")

    p = sub.add_parser("run", help="run a recipe on inputs (files or association JSON)")
    p.add_argument("recipe", help="shipped alias (calwebb_detector1) or recipe file")
    p.add_argument("inputs", nargs="+", help="_uncal/_rate files or association .json")
    p.add_argument("--output-dir", "-o", default=".", help="folder for products (default: .)")
    p.add_argument("--locked", metavar="LOCKFILE", help="refuse to run if anything differs from this lock file")
    p.add_argument("--executor", choices=("local", "processes", "dask"), default="local",
                   help="local (in-process, default), processes (a process pool) or dask "
                        "(dask.distributed); stage 1/2 fan out per exposure, stage 3 per association product")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running dask scheduler (tcp://host:8786); implies --executor dask")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for the processes executor or a new dask LocalCluster (default: one per core)")
    from .chunked import MemoryBudgetAction
    p.add_argument("--memory-budget", type=float, metavar="MIB", action=MemoryBudgetAction,
                   help="process exposures larger than this in chunks of integrations or rows (default 1024 MiB)")
    p.add_argument("--no-resume", action="store_true",
                   help="redo every product, even one already made with the same configuration hash")
    common_run(p)

    p = sub.add_parser("validate", help="check recipe files; list unavailable steps")
    p.add_argument("recipes", nargs="*", help="recipe files or aliases (default: every shipped recipe)")

    sub.add_parser("list", help="list shipped recipes and installed steps")

    p = sub.add_parser("show", help="a step's parameters, defaults and documentation")
    p.add_argument("step")

    p = sub.add_parser("explain", help="effective parameters of every step for an input, with their sources")
    p.add_argument("recipe")
    p.add_argument("input")
    common_run(p)

    p = sub.add_parser("lock", help="write a lock file (context, references with sha256, versions, parameters)")
    p.add_argument("recipe")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--output", "-o", default="webbcal.lock.yaml", help="lock file to write")
    common_run(p)

    p = sub.add_parser("reproduce", help="re-run what produced a product, pinned to its CRDS_CTX")
    p.add_argument("product", help="a product (e.g. _rate.fits) whose header has CRDS_CTX")
    p.add_argument("--input", help="the raw input (default: <rootname>_uncal.fits beside the product)")
    p.add_argument("--output-dir", "-o", default="reproduced")

    p = sub.add_parser("simulate", help="simulate exposures with known truth, and their CRDS cache")
    p.add_argument("mode", help="observing mode, or 'list'")
    p.add_argument("output_dir", nargs="?", default="simulated")
    p.add_argument("--size", choices=("tiny", "demo", "full"), default="demo")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("demo", help="simulate the demo set, build its CRDS cache and run every mode")
    p.add_argument("--output-dir", "-o", default="webbcal-demo")
    p.add_argument("--size", choices=("tiny", "demo"), default="demo")
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = _strun_form(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # libraries that set their own loggers to INFO when imported (later, lazily): filter at the
    # handlers, which a library's import cannot undo
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietLibraries(level))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        handler = globals()[f"cmd_{args.command}"]
        return handler(args) or 0
    except WebbcalError as exc:
        print(f"run-recipe: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("run-recipe: interrupted", file=sys.stderr)
        return 130


def _strun_form(argv):
    """``ALIAS INPUT... --steps.jump.x=5`` -> ``run ALIAS INPUT... --set jump.x=5``."""
    if not argv or argv[0] in COMMANDS or argv[0].startswith("-"):
        return argv
    out = ["run"]
    for arg in argv:
        if arg.startswith("--steps."):
            out += ["--set", arg[2:]]
        else:
            out.append(arg)
    return out


def _overrides(sets):
    from .recipe import parse_set_option

    out = {}
    for text in sets:
        alias, param, value = parse_set_option(text)
        out.setdefault(alias, {})[param] = value
    return out


# -- commands -----------------------------------------------------------------------------------
def cmd_run(args):
    from .executors import format_batch_summary, run_batch
    from .hooks import ProgressHook
    from .lock import read_lock
    from .recipe import Recipe

    recipe = Recipe.load(args.recipe)
    for w in recipe.warnings:
        log.warning(w)
    locked = read_lock(args.locked) if args.locked else None
    overrides = _overrides(args.sets)
    executor = "dask" if args.scheduler else args.executor
    hooks = [ProgressHook(len(recipe.all_step_aliases()) * len(args.inputs), recipe.name)] if executor == "local" else []
    results = run_batch(recipe, args.inputs, executor=executor, workers=args.workers, scheduler=args.scheduler,
                        overrides=overrides, output_dir=args.output_dir, crds_context=args.crds_context,
                        apply_crds_pars=not args.no_crds_pars, locked=locked, resume=not args.no_resume,
                        hooks=hooks)
    failed = [r for r in results if r.status == "failed"]
    if len(results) == 1 and failed:
        raise WebbcalError(failed[0].error)
    print(format_summary(results))
    if len(results) > 1 or executor != "local" or any(r.status == "skipped" for r in results):
        print(format_batch_summary(results))
    if failed:
        print(f"run-recipe: error: {len(failed)} of {len(results)} inputs failed", file=sys.stderr)
        return 1
    return 0


def format_summary(results):
    """The end-of-run table: per input and per step, status, seconds and peak memory."""
    from .hooks import peak_rss_mb

    lines = []
    for r in results:
        lines.append(f"{r.input}: {r.status}" + (f" ({r.error})" if r.error else ""))
        if r.records:
            lines.append(f"  {'step':<20} {'status':<9} {'seconds':>8} {'peak MiB':>9}")
            for rec in r.records:
                lines.append(f"  {rec.name:<20} {rec.status:<9} {rec.seconds:8.2f} {rec.peak_rss_mb:9.0f}"
                             + (f"  {rec.message}" if rec.message and rec.status != "COMPLETE" else ""))
            total = sum(rec.seconds for rec in r.records)
            lines.append(f"  {'total':<20} {'':<9} {total:8.2f}")
        for o in r.outputs:
            lines.append(f"  -> {o}")
    lines.append(f"process peak memory: {peak_rss_mb():.0f} MiB")
    return "\n".join(lines)


def cmd_validate(args):
    from .recipe import Recipe, shipped_recipes
    from .schema import validate_with_schema
    from .yamlpos import load_with_positions

    names = args.recipes or sorted(shipped_recipes())
    bad = 0
    for name in names:
        recipe = Recipe.load(name)
        raw, _ = load_with_positions(Path(recipe.path).read_text(), str(recipe.path))
        errors = validate_with_schema(raw)
        if errors:
            bad += 1
            print(f"{name}: INVALID against schema: {errors[0]}")
            continue
        report = recipe.validation_report()
        status = "valid" if not report else "valid, with notes"
        print(f"{name}: {status}")
        for line in report:
            print(f"  {line}")
    return 1 if bad else 0


def cmd_list(args):
    from . import registry
    from .recipe import Recipe, shipped_recipes

    print("recipes:")
    for alias, path in sorted(shipped_recipes().items()):
        try:
            desc = Recipe.load(path).data.get("description") or ""
        except WebbcalError as exc:
            desc = f"(invalid: {exc})"
        print(f"  {alias:<22} {desc}")
    print("steps:")
    for alias in registry.names():
        print(f"  {alias:<22} {registry.entry_point_value(alias) or '(registered in-process)'}")
    return 0


def cmd_show(args):
    from . import registry

    cls = registry.get(args.step)
    print(f"{cls.alias} ({cls.class_name or cls.__name__}): {cls.describe()}")
    print(f"  takes {cls.input_kind}, returns {cls.output_kind}; status keyword {cls.status_keyword or '-'}")
    print(f"  reference types: {', '.join(cls.reference_types) or 'none'}")
    print("  parameters:")
    for name, field in cls.parameter_model().model_fields.items():
        ann = getattr(field.annotation, "__name__", str(field.annotation)).replace("typing.", "")
        print(f"    {name:<32} {ann:<14} default {field.default!r:<12} {field.description or ''}")
    return 0


def cmd_explain(args):
    from .execute import prepare
    from .product import Product
    from .recipe import Recipe

    recipe = Recipe.load(args.recipe)
    product = Product.open(args.input)
    prepared = prepare(recipe, product.meta, overrides=_overrides(args.sets), crds_context=args.crds_context,
                       apply_crds_pars=not args.no_crds_pars)
    print(f"recipe {recipe.name} ({recipe.path}) on {args.input}")
    print(f"CRDS context {prepared.context} (from {prepared.context_source}); "
          f"variants: {', '.join(prepared.variants) or 'none'}")
    print(f"configuration hash {prepared.config_hash}")
    for rs in prepared.plan:
        state = "SKIP" if rs.params.skip else "run"
        print(f"\n[{state}] {rs.alias}")
        for reftype, path in prepared.references.get(rs.alias, {}).items():
            print(f"    reference {reftype:<12} {Path(path).name if path else 'N/A'} "
                  f"({prepared.reference_sources[rs.alias][reftype]})")
        for name, value, source in rs.explain_rows():
            print(f"    {name:<32} = {value!r:<14} <- {source}")
    return 0


def cmd_lock(args):
    from .execute import expand_inputs, prepare
    from .lock import make_lock, write_lock
    from .product import Product
    from .recipe import Recipe

    recipe = Recipe.load(args.recipe)
    prepared = {}
    for item in expand_inputs(recipe, args.inputs):
        product = Product.open(item.path)
        prepared[item.label] = prepare(recipe, product.meta, overrides=_overrides(args.sets),
                                       crds_context=args.crds_context, apply_crds_pars=not args.no_crds_pars)
    path = write_lock(args.output, make_lock(recipe, prepared))
    print(f"wrote {path} ({len(prepared)} inputs)")
    return 0


def cmd_reproduce(args):
    from .reproduce import reproduce

    results = reproduce(args.product, input_path=args.input, output_dir=args.output_dir)
    print(format_summary(results))
    return 0


def cmd_simulate(args):
    from simulator import modes

    if args.mode == "list":
        for name in sorted(modes.MODES):
            print(name)
        return 0
    if args.mode not in modes.MODES:
        from .registry import suggest

        raise WebbcalError(f"unknown mode '{args.mode}'{suggest(args.mode, modes.MODES)}; "
                           f"modes: {', '.join(sorted(modes.MODES))}")
    sset = modes.simulate(args.mode, args.output_dir, size=args.size, seed=args.seed)
    for p in sset.exposures:
        print(p)
    for p in sset.associations:
        print(p)
    return 0


def cmd_demo(args):
    from .demo import run_demo

    return run_demo(args.output_dir, size=args.size)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
