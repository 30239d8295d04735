"""Lock files: the exact context, reference files (with sha256), software and parameters of a run.

``run-recipe lock RECIPE INPUT...`` writes one; ``run --locked FILE`` refuses to run when
anything would differ, and says what.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from . import provenance
from .errors import LockMismatchError, WebbcalError

LOCK_VERSION = 1


def lock_entry(prepared):
    """The lock record of one prepared input."""
    refs = {}
    for alias, by_type in prepared.references.items():
        for reftype, path in by_type.items():
            refs.setdefault(alias, {})[reftype] = (
                None if path is None else {"file": Path(path).name, "sha256": provenance.sha256_file(path)})
    params = {rs.alias: _jsonable(rs.params.model_dump()) for rs in prepared.plan}
    return {"config_hash": prepared.config_hash, "crds_context": prepared.context,
            "variants": prepared.variants, "references": refs, "parameters": params}


def make_lock(recipe, prepared_by_input):
    """The whole lock document for ``{input_label: Prepared}``."""
    return {
        "webbcal_lock": LOCK_VERSION,
        "recipe": recipe.name,
        "recipe_file": str(recipe.path) if recipe.path else None,
        "software": provenance.software_versions(),
        "inputs": {label: lock_entry(p) for label, p in prepared_by_input.items()},
    }


def write_lock(path, doc):
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
    return Path(path)


def read_lock(path):
    """Load a lock file, checking its form."""
    path = Path(path)
    if not path.is_file():
        raise WebbcalError(f"{path}: lock file not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise WebbcalError(f"{path}: not a valid lock file ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or doc.get("webbcal_lock") != LOCK_VERSION or "inputs" not in doc:
        raise WebbcalError(f"{path}: not a webbcal lock file (no 'webbcal_lock: {LOCK_VERSION}')")
    doc["_path"] = str(path)
    return doc


def check_against_lock(lock, label, prepared):
    """Raise :class:`LockMismatchError` listing every difference between the run and the lock."""
    where = lock.get("_path", "lock file")
    diffs = []
    now = provenance.software_versions()
    for pkg, version in (lock.get("software") or {}).items():
        if now.get(pkg) != version:
            diffs.append(f"{pkg} {now.get(pkg)} (locked {version})")
    entry = _find_entry(lock, label)
    if entry is None:
        raise LockMismatchError(f"{where}: input {label} is not in the lock file")
    current = lock_entry(prepared)
    if current["crds_context"] != entry.get("crds_context"):
        diffs.append(f"CRDS context {current['crds_context']} (locked {entry.get('crds_context')})")
    for alias, by_type in current["references"].items():
        for reftype, info in by_type.items():
            locked = (entry.get("references") or {}).get(alias, {}).get(reftype)
            if info != locked:
                diffs.append(f"{alias} {reftype.upper()} {_ref(info)} (locked {_ref(locked)})")
    for alias, params in current["parameters"].items():
        locked = (entry.get("parameters") or {}).get(alias)
        if locked is None:
            diffs.append(f"step {alias} not in the lock")
            continue
        for k, v in params.items():
            if locked.get(k) != v:
                diffs.append(f"{alias}.{k}={v!r} (locked {locked.get(k)!r})")
    for alias in (entry.get("parameters") or {}):
        if alias not in current["parameters"]:
            diffs.append(f"step {alias} locked but not in this run")
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise LockMismatchError(f"{where}: run of {label} would differ from the lock: {shown}")


def _find_entry(lock, label):
    inputs = lock.get("inputs") or {}
    if label in inputs:
        return inputs[label]
    name = Path(str(label)).name
    for key, val in inputs.items():
        if Path(str(key)).name == name:
            return val
    return None


def _ref(info):
    if info is None:
        return "N/A"
    return f"{info['file']} sha256 {info['sha256'][:12]}"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
