"""Recipes: load -> validate -> merge ``extends`` -> resolve per input (variant, parameters).

A recipe is data: the step order, per-step parameters and per-mode variants of one pipeline
(or a chain of pipelines). Loading validates every key at every level and reports errors with
file, line and column and the closest valid name. Resolution against an input's header and the
CRDS parameter references yields a :class:`ResolvedStep` list with the source of every value.
"""
from __future__ import annotations

import copy
import fnmatch
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from . import registry
from .errors import RecipeError, StepUnavailableError
from .recipe_model import RecipeModel
from .step import StepParameters
from .yamlpos import load_with_positions

log = logging.getLogger("webbcal.recipe")

SCHEMA_NAME = "recipe.schema.json"


def shipped_recipes():
    """``{alias: path}`` of the recipes shipped in the ``recipes`` package."""
    root = resources.files("recipes")
    return {p.name[:-5]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml") and not p.name.startswith("_")}


def find_recipe(name, relative_to=None):
    """Path of a recipe given a shipped alias or a file path."""
    text = str(name)
    candidates = []
    if relative_to is not None:
        candidates.append(Path(relative_to).parent / text)
    candidates.append(Path(text))
    for c in candidates:
        if c.is_file():
            return c
    shipped = shipped_recipes()
    if text in shipped:
        return shipped[text]
    if text.endswith((".yaml", ".yml")) or "/" in text:
        raise RecipeError(f"{text}: recipe file not found")
    hint = registry.suggest(text, shipped)
    raise RecipeError(f"unknown recipe '{text}' (not a file, not a shipped alias){hint}")


@dataclass
class Source:
    """Where a value came from: a description and (for files) file, line, column."""

    what: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self):
        if self.file:
            return f"{self.what} ({Path(self.file).name}:{self.line})"
        return self.what


@dataclass
class ResolvedStep:
    """A step of the plan: its class, validated parameters and where each value came from."""

    alias: str
    step_class: type
    params: object
    sources: dict
    available: bool = True

    def explain_rows(self):
        """(name, value, source) for every parameter."""
        dumped = self.params.model_dump()
        return [(k, dumped[k], str(self.sources.get(k, "default"))) for k in dumped]


@dataclass
class Recipe:
    """A loaded, validated recipe (``extends`` merged).

    Use :meth:`load`; run with :meth:`run`.
    """

    data: dict
    path: Path | None
    name: str
    sources: dict = field(default_factory=dict)  # ('parameters', alias, key) | ('variant', vname, alias, key) -> Source
    warnings: list = field(default_factory=list)
    unavailable: dict = field(default_factory=dict)  # alias -> reason

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path):
        """Load a recipe by shipped alias (``calwebb_detector1``) or path, merging ``extends``."""
        path = find_recipe(name_or_path)
        data, sources, warnings, unavailable = _load_merged(path, seen=())
        name = data.get("pipeline") or path.stem
        recipe = cls(data=data, path=path, name=path.stem if path.parent != _shipped_dir() else name,
                     sources=sources, warnings=warnings, unavailable=unavailable)
        recipe._check_complete()
        return recipe

    @classmethod
    def from_dict(cls, data, name="recipe"):
        """A recipe from a Python dict (validated like a file)."""
        src = f"<{name}>"
        positions = {}
        _validate_structure(data, positions, src)
        merged, sources, warnings, unavailable = _resolve_extends(data, positions, src, None, ())
        recipe = cls(data=merged, path=None, name=name, sources=sources, warnings=warnings,
                     unavailable=unavailable)
        recipe._check_complete()
        return recipe

    def _check_complete(self):
        where = str(self.path or self.name)
        if not self.data.get("steps") and not self.data.get("chain"):
            raise RecipeError(f"{where}: the recipe (with what it extends) names no 'steps' and no 'chain'")
        if self.data.get("steps") and self.data.get("chain"):
            raise RecipeError(f"{where}: a recipe has either 'steps' or 'chain', not both")
        if self.data.get("steps") and not self.data.get("pipeline"):
            raise RecipeError(f"{where}: missing 'pipeline' (e.g. pipeline: calwebb_detector1)")
        for v in self.data.get("variants") or []:
            if not v.get("when"):
                raise RecipeError(f"{where}: variant '{v['name']}' has no 'when' conditions (here or in what it extends)")

    # -- accessors ------------------------------------------------------------------------------
    @property
    def pipeline(self):
        return self.data.get("pipeline")

    @property
    def pipeline_class(self):
        return self.data.get("pipeline_class")

    @property
    def stage(self):
        return self.data.get("stage")

    @property
    def crds_context(self):
        return (self.data.get("crds") or {}).get("context")

    @property
    def output_suffix(self):
        return self.data.get("output_suffix")

    @property
    def is_chain(self):
        return bool(self.data.get("chain"))

    def chain_stages(self):
        """The recipes of a chain, loaded, with their per-stage overrides."""
        stages = []
        for item in self.data.get("chain") or []:
            if isinstance(item, str):
                item = {"recipe": item, "parameters": {}}
            sub = Recipe.load(find_recipe(item["recipe"], self.path))
            stages.append((sub, item.get("parameters") or {}))
        return stages

    def all_step_aliases(self):
        """Every alias named in the steps list or any variant's steps list."""
        names = list(self.data.get("steps") or [])
        for v in self.data.get("variants") or []:
            for s in v.get("steps") or []:
                if s not in names:
                    names.append(s)
        return names

    def matching_variants(self, header):
        """Variants whose ``when`` conditions all match ``header``, in recipe order."""
        return [v for v in self.data.get("variants") or [] if _matches(v.get("when") or {}, header)]

    def output_suffix_for(self, header):
        """Suffix of the final product for an input with this header (variants may change it)."""
        suffix = self.output_suffix
        for v in self.matching_variants(header):
            if v.get("output_suffix"):
                suffix = v["output_suffix"]
        return suffix

    def step_sequence(self, header):
        """The ordered step aliases for an input with this header."""
        steps = list(self.data.get("steps") or [])
        for v in self.matching_variants(header):
            if v.get("steps"):
                steps = list(v["steps"])
        return steps

    # -- resolution -----------------------------------------------------------------------------
    def resolve(self, header, *, crds_pars=None, overrides=None, override_source="command line / keyword argument"):
        """Resolve the plan for one input.

        Parameters
        ----------
        header : Header-like
            The input's primary header (selects variants).
        crds_pars : dict, optional
            ``{alias: (values_dict, source_str)}`` from CRDS ``pars-*`` references.
        overrides : dict, optional
            ``{alias: {param: value}}`` given on the command line or as keyword arguments.

        Returns
        -------
        list of ResolvedStep
        """
        crds_pars = crds_pars or {}
        overrides = overrides or {}
        variants = self.matching_variants(header)
        plan = []
        for alias in self.step_sequence(header):
            try:
                cls = registry.get(alias)
            except StepUnavailableError as exc:
                if self._skipped_by_data(alias, variants, overrides):
                    plan.append(ResolvedStep(alias, None, StepParameters(skip=True),
                                             {"skip": Source("recipe")}, available=False))
                    continue
                raise StepUnavailableError(f"recipe {self.name}: {exc}") from None
            model = cls.parameter_model()
            fields = model.model_fields
            values, sources = {}, {}
            if alias in crds_pars:
                pars, src = crds_pars[alias]
                for k, v in pars.items():
                    if k in fields:
                        values[k], sources[k] = v, Source(src)
            layers = [(self.data.get("parameters", {}).get(alias, {}), ("parameters", alias))]
            for v in variants:
                layers.append((v.get("parameters", {}).get(alias, {}), ("variant", v["name"], alias)))
            for layer, key in layers:
                for k, val in layer.items():
                    values[k] = val
                    sources[k] = self.sources.get(key + (k,), Source("recipe"))
            for k, val in (overrides.get(alias) or {}).items():
                if k not in fields:
                    raise RecipeError(
                        f"unknown parameter '{k}' for step {alias} in {override_source}"
                        f"{registry.suggest(k, fields)}")
                values[k], sources[k] = val, Source(override_source)
            try:
                params = model(**values)
            except ValidationError as exc:
                err = exc.errors()[0]
                k = err["loc"][0] if err["loc"] else "?"
                raise RecipeError(
                    f"invalid value {values.get(k)!r} for {alias}.{k} from {sources.get(k, 'default')}: {err['msg']}"
                ) from None
            for k in fields:
                sources.setdefault(k, Source("default"))
            plan.append(ResolvedStep(alias, cls, params, sources))
        return plan

    def _skipped_by_data(self, alias, variants, overrides):
        skip = (self.data.get("parameters", {}).get(alias) or {}).get("skip", False)
        for v in variants:
            skip = (v.get("parameters", {}).get(alias) or {}).get("skip", skip)
        return bool((overrides.get(alias) or {}).get("skip", skip))

    # -- running --------------------------------------------------------------------------------
    def run(self, inputs, *, output_dir=None, crds_context=None, apply_crds_pars=True, **overrides):
        """Run the recipe on one or more inputs (files, associations or Products).

        Keyword arguments override parameters: ``jump={'rejection_threshold': 5}`` or
        ``steps={'jump': {...}}`` (the jwst form).

        Returns
        -------
        list of runner.execute.RunResult
        """
        from .execute import run_recipe

        if isinstance(inputs, (str, Path)) or not hasattr(inputs, "__iter__"):
            inputs = [inputs]
        return run_recipe(self, list(inputs), overrides=normalise_overrides(overrides),
                          output_dir=output_dir, crds_context=crds_context,
                          apply_crds_pars=apply_crds_pars)

    def validation_report(self):
        """Lines describing warnings and unavailable steps (empty when all is well)."""
        lines = [f"warning: {w}" for w in self.warnings]
        for alias, reason in self.unavailable.items():
            lines.append(f"unavailable: step '{alias}' ({reason})")
        return lines


def normalise_overrides(overrides):
    """``{'steps': {'jump': {...}}}`` or ``{'jump': {...}}`` -> ``{'jump': {...}}``."""
    out = {}
    for key, value in (overrides or {}).items():
        if key == "steps" and isinstance(value, dict):
            for alias, params in value.items():
                out.setdefault(alias, {}).update(params)
        elif isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        else:
            raise RecipeError(f"override '{key}={value!r}' must be step={{parameter: value}} or step.parameter=value")
    return out


def parse_set_option(text):
    """``jump.rejection_threshold=5`` -> ``('jump', 'rejection_threshold', 5)`` (YAML-typed value)."""
    import yaml

    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise RecipeError(f"--set '{text}': expected STEP.PARAMETER=VALUE, e.g. jump.rejection_threshold=5")
    key, raw = text.split("=", 1)
    if key.startswith("steps."):
        key = key[len("steps."):]
    alias, _, param = key.partition(".")
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    return alias, param, value


# ---------------------------------------------------------------------------------------------
def _shipped_dir():
    return Path(str(resources.files("recipes")))


def _load_merged(path, seen):
    path = Path(path).resolve()
    if path in seen:
        chain = " -> ".join(p.name for p in seen + (path,))
        raise RecipeError(f"{path}: 'extends' loops back on itself ({chain})")
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read recipe ({exc.strerror})") from None
    data, positions = load_with_positions(text, str(path))
    if data is None:
        raise RecipeError(f"{path}: the recipe file is empty")
    if not isinstance(data, dict):
        raise RecipeError(f"{path}, line 1: a recipe is a mapping of keys (pipeline, steps, ...), found {type(data).__name__}")
    _validate_structure(data, positions, str(path))
    return _resolve_extends(data, positions, str(path), path, seen + (path,))


def _resolve_extends(data, positions, src, path, seen):
    warnings, unavailable = [], {}
    own_sources = _collect_sources(data, positions, src)
    _validate_steps_and_parameters(data, positions, src, warnings, unavailable)
    if data.get("extends"):
        parent_path = find_recipe(data["extends"], path)
        parent, sources, pw, pu = _load_merged(parent_path, seen)
        warnings = pw + warnings
        unavailable = {**pu, **unavailable}
        merged = _merge(parent, data)
        sources.update(own_sources)
    else:
        merged = copy.deepcopy(data)
        sources = own_sources
    merged.pop("extends", None)
    return merged, sources, warnings, unavailable


def _merge(parent, child):
    out = copy.deepcopy(parent)
    for key, value in child.items():
        if key == "extends":
            continue
        if key == "parameters":
            params = out.setdefault("parameters", {})
            for alias, vals in value.items():
                params.setdefault(alias, {}).update(copy.deepcopy(vals))
        elif key == "variants":
            existing = {v["name"]: v for v in out.setdefault("variants", [])}
            for v in value:
                if v["name"] in existing:
                    target = existing[v["name"]]
                    for k, val in v.items():
                        if k == "parameters":
                            for alias, vals in val.items():
                                target.setdefault("parameters", {}).setdefault(alias, {}).update(vals)
                        else:
                            target[k] = copy.deepcopy(val)
                else:
                    out["variants"].append(copy.deepcopy(v))
        elif key == "crds":
            out["crds"] = {**(out.get("crds") or {}), **(value or {})}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _collect_sources(data, positions, src):
    sources = {}
    for alias, vals in (data.get("parameters") or {}).items():
        for k in vals or {}:
            line, col = positions.get(("parameters", alias, k), (None, None))
            sources[("parameters", alias, k)] = Source("recipe", src, line, col)
    for i, v in enumerate(data.get("variants") or []):
        for alias, vals in (v.get("parameters") or {}).items():
            for k in vals or {}:
                line, col = positions.get(("variants", i, "parameters", alias, k), (None, None))
                sources[("variant", v["name"], alias, k)] = Source(f"variant '{v['name']}'", src, line, col)
    return sources


def _where(src, positions, loc):
    loc = tuple(loc)
    while loc and loc not in positions:
        loc = loc[:-1]
    line, col = positions.get(loc, (None, None))
    return f"{src}, line {line}, column {col}" if line else src


def _validate_structure(data, positions, src):
    try:
        RecipeModel.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: (e["type"] != "extra_forbidden", e["type"] == "missing"))
        err = errors[0]
        loc = tuple(err["loc"])
        loc = tuple(x for x in loc if not (isinstance(x, str) and ("[" in x or x in ("str", "ChainStage"))))
        where = _where(src, positions, loc)
        if err["type"] == "extra_forbidden":
            key = loc[-1]
            parent_model = _model_at(loc[:-1])
            hint = registry.suggest(key, parent_model.model_fields) if parent_model else ""
            raise RecipeError(f"{where}: unknown key '{key}'{_context(loc[:-1])}{hint}") from None
        if err["type"] == "missing":
            raise RecipeError(f"{where}: missing required key '{loc[-1]}'{_context(loc[:-1])}") from None
        dotted = ".".join(str(x) for x in loc)
        raise RecipeError(f"{where}: invalid value for '{dotted}': {err['msg']}") from None


def _model_at(loc):
    from .recipe_model import ChainStage, CrdsPin, Variant

    if not loc:
        return RecipeModel
    if loc[0] == "crds":
        return CrdsPin
    if loc[0] == "variants" and len(loc) == 2:
        return Variant
    if loc[0] == "chain" and len(loc) == 2:
        return ChainStage
    return None


def _context(loc):
    if not loc:
        return " at the top level of the recipe"
    return f" in '{'.'.join(str(x) for x in loc)}'"


def _validate_steps_and_parameters(data, positions, src, warnings, unavailable):
    """Every step alias and parameter must exist; values must have the right type and range."""
    known = set(registry.names())

    def check_alias(alias, loc):
        if alias in known:
            try:
                registry.get(alias)
                return True
            except StepUnavailableError as exc:
                unavailable[alias] = str(exc)
                return False
        if alias in known_step_names():
            unavailable.setdefault(alias, "no installed plugin provides it yet")
            return False
        hint = registry.suggest(alias, known | set(known_step_names()))
        raise RecipeError(f"{_where(src, positions, loc)}: unknown step '{alias}'{hint}")

    for i, alias in enumerate(data.get("steps") or []):
        check_alias(alias, ("steps", i))
    for vi, v in enumerate(data.get("variants") or []):
        for i, alias in enumerate(v.get("steps") or []):
            check_alias(alias, ("variants", vi, "steps", i))

    blocks = [(data.get("parameters") or {}, ("parameters",))]
    blocks += [(v.get("parameters") or {}, ("variants", vi, "parameters")) for vi, v in enumerate(data.get("variants") or [])]
    for block, base in blocks:
        for alias, vals in block.items():
            if not check_alias(alias, base + (alias,)):
                continue
            if not isinstance(vals, dict):
                raise RecipeError(f"{_where(src, positions, base + (alias,))}: parameters of step {alias} must be a mapping")
            model = registry.get(alias).parameter_model()
            for key, value in vals.items():
                loc = base + (alias, key)
                if key not in model.model_fields:
                    line, col = positions.get(loc, (None, None))
                    at = f" (line {line}, column {col})" if line else ""
                    raise RecipeError(
                        f"{src}: unknown parameter '{key}' for step {alias}{at}"
                        f"{registry.suggest(key, model.model_fields)}")
                try:
                    model(**{key: value})
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"]
                    raise RecipeError(f"{_where(src, positions, loc)}: invalid value {value!r} for {alias}.{key}: {msg}") from None


def known_step_names():
    """``{alias: jwst class name}`` of the reference pipeline's steps (recipes/_known_steps.yaml)."""
    global _KNOWN
    if _KNOWN is None:
        import yaml

        _KNOWN = yaml.safe_load((resources.files("recipes") / "_known_steps.yaml").read_text())
    return _KNOWN


_KNOWN = None


def _matches(when, header):
    for key, expected in when.items():
        actual = header.get(key.upper()) if hasattr(header, "get") else None
        options = expected if isinstance(expected, list) else [expected]
        if not any(_value_matches(actual, opt) for opt in options):
            return False
    return True


def _value_matches(actual, expected):
    if actual is None:
        return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        truthy = {"T": True, "TRUE": True, "F": False, "FALSE": False}
        a = actual if isinstance(actual, bool) else truthy.get(str(actual).strip().upper())
        e = expected if isinstance(expected, bool) else truthy.get(str(expected).strip().upper())
        return a is not None and a == e
    if isinstance(expected, (int, float)) and not isinstance(actual, str):
        return float(actual) == float(expected)
    return fnmatch.fnmatchcase(str(actual).strip().upper(), str(expected).strip().upper())
