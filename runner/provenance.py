"""Provenance keywords and the hash of a fully resolved configuration."""
from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path


def config_hash(recipe_name, context, plan, references):
    """SHA-256 of the resolved configuration: recipe, context, steps, parameters, references.

    Output locations (``output_dir``, ``output_file``, ``save_results``) do not change results
    and are left out, so moving the outputs keeps the hash.
    """
    ignore = {"output_dir", "output_file", "save_results"}
    steps = []
    for rs in plan:
        params = {k: v for k, v in rs.params.model_dump().items() if k not in ignore}
        refs = {r: (Path(p).name if p else None) for r, p in sorted(references.get(rs.alias, {}).items())}
        steps.append({"step": rs.alias, "parameters": params, "references": refs})
    doc = {"recipe": recipe_name, "crds_context": context, "steps": steps}
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def software_versions():
    """Versions of the software that shapes results."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("webbcal", "numpy", "astropy", "crds", "numba", "scipy", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


_SHA_CACHE = {}


def sha256_file(path, chunk=1 << 20):
    """SHA-256 of a file's bytes.

    Reference files are immutable, so digests are remembered per (path, size, mtime) in this
    process and in ``$XDG_CACHE_HOME/webbcal/sha256.json`` across runs.
    """
    import os

    st = os.stat(path)
    key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    if key in _SHA_CACHE:
        return _SHA_CACHE[key]
    disk = _sha_cache_file()
    stored = _read_sha_cache(disk)
    if key in stored:
        _SHA_CACHE[key] = stored[key]
        return stored[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    digest = h.hexdigest()
    _SHA_CACHE[key] = digest
    if st.st_size > (1 << 20):        # only worth remembering for large files
        stored[key] = digest
        _write_sha_cache(disk, stored)
    return digest


def _sha_cache_file():
    import os

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "webbcal" / "sha256.json"


def _read_sha_cache(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_sha_cache(path, stored):
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(stored) > 5000:
            stored = dict(list(stored.items())[-5000:])
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
        os.replace(tmp, path)
    except OSError:
        pass      # a cache we cannot write only costs time


def _card(value, comment):
    """(value, comment) when the card fits in 80 characters, else the value alone."""
    return (value, comment) if len(str(value)) + len(comment) <= 62 else value


def stamp(meta, *, recipe_name, context, chash, variants, cal_ver, crds_ver):
    """Write the run-level provenance keywords into a primary header."""
    meta["CAL_VER"] = _card(cal_ver, "webbcal version that produced this file")
    meta["CAL_VCS"] = ("RELEASE", "Calibration software version control system")
    meta["CRDS_VER"] = _card(crds_ver, "Version of CRDS client used")
    meta["CRDS_CTX"] = _card(context, "CRDS context (.pmap) used")
    meta["WC_RECIP"] = _card(recipe_name[:68], "webbcal recipe that produced this file")
    meta["WC_VARNT"] = _card(",".join(variants)[:68] or "none", "recipe variants applied")
    meta["WC_CHASH"] = chash
    meta["DATE"] = (datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                    "UTC date file created")
