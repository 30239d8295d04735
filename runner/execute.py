"""Execution: prepare (context, CRDS parameters, plan, references) then run the plan.

The seam is explicit, as in LSST pipe_base: :func:`prepare` turns a recipe and one input's header
into a :class:`Prepared` plan (inspectable by ``explain`` and ``lock``); :func:`execute_plan`
runs it. Nothing is written until the final product is complete, and then atomically.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, crds_refs, provenance
from .association import Association, is_association
from .errors import InputError, ReferenceFileError, WebbcalError
from .hooks import StepRecord, TimingHook, call_hooks
from astropy.io import fits

from .chunked import open_input, run_chunked
from .product import Product
from .step import SkipStep

log = logging.getLogger("webbcal.run")


@dataclass
class Prepared:
    """Everything decided before execution for one input."""

    recipe_name: str
    context: str
    context_source: str
    variants: list
    plan: list                      # list of ResolvedStep
    references: dict                # alias -> {reftype: path or None}
    reference_sources: dict         # alias -> {reftype: 'crds' | 'override'}
    config_hash: str
    output_suffix: str | None = None


@dataclass
class RunResult:
    """The outcome for one input (an exposure, or an association product in stage 3)."""

    input: str
    status: str = "done"            # done | failed | skipped
    outputs: list = field(default_factory=list)
    records: list = field(default_factory=list)
    error: str | None = None
    config_hash: str | None = None
    product: object = None
    main_output: str | None = None


# ---------------------------------------------------------------------------------------------
def prepare(recipe, header, *, overrides=None, crds_context=None, apply_crds_pars=True, source="input"):
    """Resolve context, CRDS parameter references, variant, parameters and reference files."""
    sequence = recipe.step_sequence(header)
    try:
        context, ctx_source = crds_refs.resolve_context(recipe.crds_context, crds_context)
        crds_refs.check_context(context)
        context_error = None
    except ReferenceFileError as exc:
        # Only fatal when something needs CRDS: a step with references, or CRDS parameters.
        context, ctx_source, context_error = "N/A", "no CRDS context available", exc
        if apply_crds_pars or _needs_references(recipe, header, overrides):
            raise
    crds_pars = {}
    if apply_crds_pars and context_error is None:
        from . import registry

        if recipe.pipeline_class:
            found = crds_refs.parameter_reference(header, recipe.pipeline_class, context)
            if found:
                pars, src = found
                for alias, vals in crds_refs.pipeline_step_parameters(pars).items():
                    crds_pars[alias] = (vals, src)
        for alias in sequence:
            if not registry.available(alias):
                continue
            cls = registry.get(alias)
            if not cls.class_name:
                continue
            found = crds_refs.parameter_reference(header, cls.class_name, context)
            if found:
                vals, src = found
                merged = dict(crds_pars.get(alias, ({}, src))[0])
                merged.update(vals)
                crds_pars[alias] = (merged, src)
        for alias, (vals, src) in crds_pars.items():
            if alias in sequence and registry.available(alias):
                known = registry.get(alias).parameter_model().model_fields
                for k in vals:
                    if k not in known:
                        log.warning("%s: parameter '%s' for step %s is not one of ours; ignored", src, k, alias)
    plan = recipe.resolve(header, crds_pars=crds_pars, overrides=overrides)
    references, ref_sources = {}, {}
    wanted = set()
    for rs in plan:
        if rs.params.skip:
            continue
        for reftype in rs.step_class.reference_types:
            if not getattr(rs.params, f"override_{reftype}", None):
                wanted.add(reftype)
    chosen = crds_refs.best_references(header, wanted, context) if wanted else {}
    for rs in plan:
        refs, srcs = {}, {}
        if not rs.params.skip:
            for reftype in rs.step_class.reference_types:
                override = getattr(rs.params, f"override_{reftype}", None)
                if override:
                    if not Path(override).is_file():
                        raise ReferenceFileError(f"{override}: override_{reftype} file not found")
                    refs[reftype], srcs[reftype] = str(override), "override"
                else:
                    refs[reftype], srcs[reftype] = chosen.get(reftype), "crds"
        references[rs.alias], ref_sources[rs.alias] = refs, srcs
    variants = [v["name"] for v in recipe.matching_variants(header)]
    chash = provenance.config_hash(recipe.name, context, plan, references)
    return Prepared(recipe.name, context, ctx_source, variants, plan, references, ref_sources, chash,
                    recipe.output_suffix_for(header))


def _needs_references(recipe, header, overrides):
    from . import registry

    for alias in recipe.step_sequence(header):
        if registry.available(alias) and registry.get(alias).reference_types:
            return True
    return False


def execute_plan(prepared, product, *, output_dir=None, hooks=(), save=True, input_path=None):
    """Run a prepared plan on a product; save the final product and any extra products.

    Returns
    -------
    RunResult
    """
    chunked = run_chunked(prepared, product, output_dir=output_dir, hooks=hooks, save=save, input_path=input_path)
    if chunked is not None:         # too large for the memory budget and every step chunkable
        return chunked
    output_dir = Path(output_dir or ".")
    source = str(input_path or product.filename)
    result = RunResult(input=source, config_hash=prepared.config_hash)
    hooks = list(hooks) or [TimingHook()]
    extras = []
    for rs in prepared.plan:
        record = StepRecord(rs.alias)
        keyword = rs.step_class.status_keyword if rs.step_class is not None else ""
        if rs.params.skip:
            record.status = "SKIPPED"
            record.message = "skip=True"
            if keyword:
                product.meta[keyword] = "SKIPPED"
            result.records.append(record)
            continue
        step = rs.step_class(params=rs.params, references=prepared.references.get(rs.alias, {}))
        product = _coerce_kind(product, step, source)
        call_hooks(hooks, "before_step", rs.alias, product)
        try:
            out = step.process(product)
            if out is None:
                raise WebbcalError(f"step {rs.alias} returned no product (a plugin bug)")
            product = out
        except SkipStep as why:
            record.status = "SKIPPED"
            record.message = str(why)
            log.info("%s: %s skipped: %s", source, rs.alias, why)
        except WebbcalError as exc:
            call_hooks(hooks, "on_error", rs.alias, exc)
            raise type(exc)(f"{source}: step {rs.alias}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line naming file and step
            call_hooks(hooks, "on_error", rs.alias, exc)
            msg = str(exc).splitlines()[0] if str(exc) else ""
            log.debug("step %s failed", rs.alias, exc_info=True)
            raise WebbcalError(f"{source}: step {rs.alias} failed: {type(exc).__name__}: {msg}") from exc
        call_hooks(hooks, "after_step", rs.alias, product, record)
        if keyword:
            product.meta[keyword] = record.status
        if record.status == "COMPLETE":
            for reftype, path in prepared.references.get(rs.alias, {}).items():
                kw = crds_refs.reftype_keyword(reftype)
                if path is None:
                    product.meta[kw] = "N/A"
                elif prepared.reference_sources[rs.alias].get(reftype) == "crds":
                    product.meta[kw] = f"crds://{Path(path).name}"
                else:
                    product.meta[kw] = str(path)[-68:]
        extras.extend(step._extra_outputs)
        if record.status == "COMPLETE":
            product.meta.add_history(f"webbcal {rs.alias}: COMPLETE")
        result.records.append(record)
        if save and rs.params.save_results:
            name = rs.params.output_file or f"{product.rootname}_{rs.params.suffix or rs.alias}.fits"
            where = Path(rs.params.output_dir or output_dir) / name
            _stamp(product, prepared)
            _check_not_input(where, input_path)
            result.outputs.append(str(product.save(where)))
    for _suffix, extra, _root in extras:
        if isinstance(getattr(extra, "meta", None), fits.Header):
            for kw, value in product.meta.items():
                if kw.startswith(("S_", "R_")) and kw not in extra.meta:
                    extra.meta[kw] = value
            _stamp(extra, prepared)
    is_file_product = isinstance(product, Product)
    if is_file_product:
        _stamp(product, prepared)
    if save:
        suffix = prepared.output_suffix or (prepared.plan[-1].alias if prepared.plan else "out")
        targets = []
        if is_file_product:
            targets.append((output_dir / f"{product.rootname}_{suffix}.fits", product))
        for sfx, extra, root in extras:
            ext = getattr(extra, "file_extension", ".fits")
            root = root or getattr(extra, "rootname", None) or product.rootname
            targets.append((output_dir / f"{root}_{sfx}{ext}", extra))
        for where, _ in targets:
            _check_not_input(where, input_path)
        for where, prod in targets:
            where.parent.mkdir(parents=True, exist_ok=True)
            saved = prod.save(where)
            result.outputs.append(str(saved or where))
        if targets:
            result.main_output = str(targets[0][0])
    result.product = product
    return result


def _stamp(product, prepared):
    provenance.stamp(product.meta, recipe_name=prepared.recipe_name, context=prepared.context,
                     chash=prepared.config_hash, variants=prepared.variants, cal_ver=__version__,
                     crds_ver=crds_refs.crds_version())


def _check_not_input(where, input_path):
    if input_path is not None and Path(where).resolve() == Path(input_path).resolve():
        raise InputError(f"{input_path}: output would overwrite the input; choose another suffix or output_dir")


def _coerce_kind(product, step, source):
    want = step.input_kind
    if want in ("any", product.kind):
        return product
    if want == "ramp" and product.kind == "level1b":
        return product.as_ramp()
    raise InputError(f"{source}: step {step.alias} takes a {want} product, but this is a {product.kind} product")


# ---------------------------------------------------------------------------------------------
@dataclass
class WorkItem:
    """One unit of work: an exposure (stage 1/2), or an association product (stage 3)."""

    path: Path
    association: Association | None = None
    asn_product: object = None

    @property
    def label(self):
        return str(self.path) if self.asn_product is None or self.association is None else f"{self.association.path.name}:{self.asn_product.name}"


def expand_inputs(recipe, inputs):
    """Files and associations -> work items (stage 3: one per association product)."""
    items = []
    for inp in inputs:
        if isinstance(inp, Product):
            items.append(inp)
            continue
        path = Path(inp)
        if is_association(path):
            asn = Association.load(path)
            for prod in asn.products:
                if (recipe.stage or 1) >= 3:
                    items.append(WorkItem(path, asn, prod))
                else:
                    for m in prod.members:
                        if m.exptype in ("science", "tsoimage"):
                            items.append(WorkItem(m.path, asn, prod))
        else:
            items.append(WorkItem(path))
    return items


def run_recipe(recipe, inputs, *, overrides=None, output_dir=None, crds_context=None,
               apply_crds_pars=True, hooks=(), raise_on_error=True, save=True, locked=None):
    """Run a recipe (or a chain) on inputs; one :class:`RunResult` per work item."""
    if recipe.is_chain:
        return _run_chain(recipe, inputs, overrides=overrides, output_dir=output_dir,
                          crds_context=crds_context, apply_crds_pars=apply_crds_pars,
                          hooks=hooks, raise_on_error=raise_on_error, locked=locked)
    results = []
    items = []
    for inp in inputs:
        try:
            items.extend(expand_inputs(recipe, [inp]))
        except WebbcalError as exc:
            if raise_on_error:
                raise
            results.append(RunResult(input=str(inp), status="failed", error=str(exc)))
    for item in items:
        label = item.label if isinstance(item, WorkItem) else str(item.filename)
        try:
            product_set_dir = None
            if isinstance(item, Product):
                product, path = item, None
            elif item.association is not None and (recipe.stage or 1) >= 3:
                from .product_set import ProductSet

                product, path = ProductSet.from_association(item.association, item.asn_product), None
                product.working_dir = Path(output_dir or ".") / ".webbcal-work" / product.name
                product_set_dir = product.working_dir
            else:
                product, path = open_input(item.path), item.path     # images read when first used
            if isinstance(item, WorkItem) and item.association is not None:
                product.association = item.association
                product.asn_product = item.asn_product
            prepared = prepare(recipe, product.meta, overrides=overrides, crds_context=crds_context,
                               apply_crds_pars=apply_crds_pars, source=label)
            if locked is not None:
                from .lock import check_against_lock

                check_against_lock(locked, label, prepared)
            holder = [product]
            del product          # execute_plan holds the only reference: a converted input is freed
            try:
                result = execute_plan(prepared, holder.pop(), output_dir=output_dir, hooks=hooks,
                                      save=save, input_path=path)
            finally:
                _remove_working_dir(product_set_dir)
            result.input = label
        except WebbcalError as exc:
            if raise_on_error:
                raise
            result = RunResult(input=label, status="failed", error=str(exc))
        results.append(result)
    return results


def _remove_working_dir(path):
    """Remove a stage-3 working folder (spilled member updates) and its parent when empty."""
    import shutil

    if path is None:
        return
    shutil.rmtree(path, ignore_errors=True)
    try:
        Path(path).parent.rmdir()
    except OSError:
        pass


def _run_chain(recipe, inputs, **kwargs):
    """Run chained stages; each stage takes the previous stage's main products.

    When a stage-3 recipe follows per-exposure stages, an association of the previous
    products is written to the output folder and used as its input.
    """
    overrides = kwargs.pop("overrides") or {}
    output_dir = Path(kwargs.get("output_dir") or ".")
    all_results = []
    current = list(inputs)
    previous_stage = 0
    for sub, stage_overrides in recipe.chain_stages():
        merged = {a: dict(v) for a, v in stage_overrides.items()}
        for alias, vals in overrides.items():
            if alias in sub.all_step_aliases():
                merged.setdefault(alias, {}).update(vals)
        if (sub.stage or 1) >= 3 and previous_stage < 3 and not any(is_association(c) for c in current):
            current = [str(write_association(current, sub, output_dir))]
        results = run_recipe(sub, current, overrides=merged, **kwargs)
        all_results.extend(results)
        current = [r.main_output for r in results if r.status == "done" and r.main_output]
        previous_stage = sub.stage or 1
    return all_results


def write_association(paths, recipe, output_dir):
    """Write a stage-3 association of ``paths`` (all science members) and return its path."""
    import json

    from .product import rootname

    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no products from the previous stage to associate")
    asn_type = (recipe.pipeline or "stage3").replace("calwebb_", "")
    name = f"{rootname(paths[0].name)}_{asn_type}"
    doc = {
        "asn_type": asn_type, "asn_rule": f"webbcal_chain_{asn_type}", "asn_id": "c0000",
        "asn_pool": "none", "program": "", "target": "", "version_id": None,
        "code_version": __version__,
        "products": [{"name": name, "members": [
            {"expname": os.path.relpath(p.resolve(), Path(output_dir).resolve()), "exptype": "science"}
            for p in paths]}],
    }
    out = Path(output_dir) / f"{name}_asn.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    return out


# ---------------------------------------------------------------------------------------------
def run_single_step(step, input, *, crds_context=None, apply_crds_pars=False, overrides=None,
                    output_dir=None):
    """Run one step (class or instance) on a file or Product; returns the output Product."""
    from .recipe import Recipe

    cls = step if isinstance(step, type) else type(step)
    product = input if isinstance(input, Product) else Product.open(input)
    recipe = Recipe.from_dict({"pipeline": f"single_{cls.alias}", "steps": [cls.alias]}, name=cls.alias)
    from . import registry

    if registry._registered.get(cls.alias) is not cls and registry._loaded.get(cls.alias) is not cls:
        registry.register(cls)
    ov = dict(overrides or {})
    if not isinstance(step, type):
        defaults = cls.parameter_model()()
        ov = {**{k: v for k, v in step.params.model_dump().items() if getattr(defaults, k) != v}, **ov}
    prepared = prepare(recipe, product.meta, overrides={cls.alias: ov}, crds_context=crds_context,
                       apply_crds_pars=apply_crds_pars)
    prepared.output_suffix = prepared.plan[0].params.suffix or cls.alias
    save = prepared.plan[0].params.save_results
    result = execute_plan(prepared, product, output_dir=output_dir or os.getcwd(), save=False,
                          input_path=None if isinstance(input, Product) else input)
    out = result.product
    if save:
        name = prepared.plan[0].params.output_file or f"{out.rootname}_{prepared.output_suffix}.fits"
        out.save(Path(prepared.plan[0].params.output_dir or output_dir or ".") / name)
    return out
