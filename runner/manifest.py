"""The run manifest of a batch, and the resume rule.

Every batch run (``run-recipe run ... --executor local|processes|dask``) writes a JSON manifest
in its output folder, ``<recipe>.manifest.json``::

    {
      "webbcal_manifest": 1,
      "started": "2026-...Z", "updated": "...", "finished": true,
      "executor": {"name": "dask", "workers": 2, "scheduler": "tcp://..."},
      "recipe": {"name": "calwebb_detector1", "file": ".../calwebb_detector1.yaml",
                 "hash": "<sha256 of the resolved recipe>", "resolved": {...the merged recipe...},
                 "stages": [{"name": ..., "hash": ..., "overrides": {...}}]},
      "overrides": {"jump": {"rejection_threshold": 5}},
      "crds": {"CRDS_PATH": "...", "contexts": ["jwst_0001.pmap"]},
      "lock": {"webbcal_lock": 1, "recipe": ..., "software": {...},
               "inputs": {LABEL: runner.lock.lock_entry(prepared), ...}},
      "summary": {"done": 14, "failed": 1, "skipped": 1},
      "items": [{"label": ..., "stage": "calwebb_detector1", "input": ..., "status": "done",
                 "error": null, "note": null, "config_hash": ..., "seconds": 1.9,
                 "peak_rss_mb": 212.0, "worker": "host:pid", "main_product": ".../x_rate.fits",
                 "products": [".../x_rate.fits", ".../x_rateints.fits"],
                 "steps": [{"name": "jump", "status": "COMPLETE", "seconds": 0.3, "peak_rss_mb": 200}]}]
    }

The ``lock`` section has the form of a lock file (JSON is YAML), so it can be given to
``run --locked`` to check a later run against this one.

Resume rule (:func:`resume_decision`): an input is skipped when its final product exists and
the product's ``WC_CHASH`` equals the configuration hash :func:`runner.execute.prepare`
computes now (and every other product the previous run recorded for it still exists). A
product made with a different configuration is redone, and the log says so; so is one that
cannot be read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from . import provenance
from .atomic import atomic_path

log = logging.getLogger("webbcal.batch")

MANIFEST_VERSION = 1


def manifest_path(output_dir, recipe):
    """Where the manifest of ``recipe`` run into ``output_dir`` lives."""
    return Path(output_dir) / f"{recipe.name}.manifest.json"


def recipe_hash(recipe):
    """SHA-256 of the resolved (``extends`` merged) recipe document."""
    text = json.dumps(recipe.data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextmanager
def _memoised_sha256():
    """Hash each reference file once while lock entries of many inputs are built."""
    original = provenance.sha256_file
    cache = {}

    def sha(path, *args, **kwargs):
        key = str(path)
        try:
            st = os.stat(key)
            key = (key, st.st_size, st.st_mtime_ns)
        except OSError:
            return original(path, *args, **kwargs)
        if key not in cache:
            cache[key] = original(path, *args, **kwargs)
        return cache[key]

    provenance.sha256_file = sha
    try:
        yield
    finally:
        provenance.sha256_file = original


def read_product_hash(path):
    """``WC_CHASH`` of a product's primary header, or None when absent or unreadable."""
    from astropy.io import fits

    try:
        return fits.getval(str(path), "WC_CHASH", ext=0)
    except Exception:  # noqa: BLE001 - missing keyword, truncated or corrupt file: not reusable
        return None


def resume_decision(config_hash, main_product, previous_entry=None):
    """Decide whether an input's products can be reused.

    Parameters
    ----------
    config_hash : str
        The hash :func:`runner.execute.prepare` computes for the input now.
    main_product : str or Path
        Where the final product of this input is (or would be) written.
    previous_entry : dict, optional
        The input's entry in the previous manifest (its ``products`` are checked to exist).

    Returns
    -------
    (action, reason) : (str, str or None)
        ``("skip", why)`` when the product is up to date, ``("redo", why)`` when a product
        exists but cannot be reused, ``("run", None)`` when there is no product yet.
    """
    main_product = Path(main_product)
    if not main_product.exists():
        return "run", None
    found = read_product_hash(main_product)
    if found is None:
        return "redo", f"{main_product.name} exists but has no readable WC_CHASH; redoing it"
    if found != config_hash:
        return "redo", (f"{main_product.name} was made with a different configuration "
                        f"(WC_CHASH {found[:12]}, now {config_hash[:12]}); redoing it")
    for other in (previous_entry or {}).get("products") or []:
        if not Path(other).exists():
            return "redo", f"{Path(other).name} (made with {main_product.name}) is missing; redoing it"
    return "skip", f"{main_product.name} is up to date (WC_CHASH {config_hash[:12]})"


class Manifest:
    """The manifest of one batch run, written atomically as it progresses.

    Parameters
    ----------
    path : Path
        The JSON file.
    recipe : runner.recipe.Recipe
        The recipe run (a chain's stages are recorded too).
    executor : dict
        ``{"name": ..., "workers": ..., "scheduler": ...}``.
    overrides : dict, optional
        ``{alias: {param: value}}`` from the command line.
    stages : list, optional
        ``[(sub_recipe, overrides)]`` of a chain.
    """

    def __init__(self, path, recipe, executor, overrides=None, stages=None, min_interval=1.0):
        self.path = Path(path)
        self.previous = read_manifest(self.path)
        self.min_interval = min_interval
        self._last_write = 0.0
        self.doc = {
            "webbcal_manifest": MANIFEST_VERSION,
            "started": _now(),
            "updated": None,
            "finished": False,
            "executor": dict(executor),
            "recipe": {
                "name": recipe.name,
                "file": str(recipe.path) if recipe.path else None,
                "hash": recipe_hash(recipe),
                "resolved": recipe.data,
                "stages": [{"name": sub.name, "file": str(sub.path) if sub.path else None,
                            "hash": recipe_hash(sub), "overrides": ov}
                           for sub, ov in (stages or [])] if recipe.is_chain else [],
            },
            "overrides": overrides or {},
            "crds": {"CRDS_PATH": os.environ.get("CRDS_PATH"), "contexts": []},
            "lock": {"webbcal_lock": 1, "recipe": recipe.name,
                     "recipe_file": str(recipe.path) if recipe.path else None,
                     "software": provenance.software_versions(), "inputs": {}},
            "summary": {"done": 0, "failed": 0, "skipped": 0},
            "items": [],
        }
        self._index = {}

    # -- previous run ---------------------------------------------------------------------------
    def previous_entry(self, label):
        """This label's entry in the manifest of the previous run, or None."""
        if not hasattr(self, "_previous_index"):
            self._previous_index = {}
            for item in (self.previous or {}).get("items") or []:
                self._previous_index.setdefault(item.get("label"), item)
        return self._previous_index.get(label)

    # -- recording ------------------------------------------------------------------------------
    def add_lock(self, label, prepared):
        """Record the lock information of a prepared input."""
        from .lock import lock_entry

        with _memoised_sha256():
            self.doc["lock"]["inputs"][label] = lock_entry(prepared)
        if prepared.context not in self.doc["crds"]["contexts"]:
            self.doc["crds"]["contexts"].append(prepared.context)

    def record(self, entry):
        """Add or replace the entry of ``entry['label']`` (per stage) and write, at most once a second."""
        key = (entry.get("stage"), entry["label"])
        if key in self._index:
            self.doc["items"][self._index[key]] = entry
        else:
            self._index[key] = len(self.doc["items"])
            self.doc["items"].append(entry)
        self.write(force=False)

    def write(self, force=True, finished=False):
        """Write the manifest atomically (temporary file, then rename)."""
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval:
            return self.path
        self._last_write = now
        counts = {"done": 0, "failed": 0, "skipped": 0}
        for item in self.doc["items"]:
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        self.doc["summary"] = counts
        self.doc["updated"] = _now()
        self.doc["finished"] = bool(finished)
        with atomic_path(self.path) as tmp, open(tmp, "w") as fh:
            json.dump(self.doc, fh, indent=1, default=str)
        return self.path


def read_manifest(path):
    """A manifest document, or None when there is none (or it is not readable)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("%s: previous manifest not readable; ignoring it", path)
        return None
    if not isinstance(doc, dict) or doc.get("webbcal_manifest") != MANIFEST_VERSION:
        return None
    return doc
