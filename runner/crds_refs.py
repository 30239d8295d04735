"""Reference files and parameter references through the ``crds`` client, for a pinned context.

Works unchanged against the real CRDS server (``CRDS_SERVER_URL`` set) and fully offline
against a local cache (``CRDS_PATH`` with ``config/jwst/server_config``, ``mappings/jwst``,
``references/jwst``). Context precedence: the recipe's pin, else the ``--crds-context`` /
``crds_context=`` argument, else ``CRDS_CONTEXT``, else the cache's operational context.
"""
from __future__ import annotations

import ast
import logging
import os
from pathlib import Path

from .errors import ReferenceFileError

log = logging.getLogger("webbcal.crds")

#: reference type -> provenance keyword (jwst convention); others get R_ + first 6 letters
REFTYPE_KEYWORDS = {
    "dark": "R_DARK", "gain": "R_GAIN", "readnoise": "R_READNO", "linearity": "R_LINEAR",
    "saturation": "R_SATURA", "mask": "R_MASK", "ipc": "R_IPC", "superbias": "R_SUPERB",
    "refpix": "R_REFPIX", "rscd": "R_RSCD", "reset": "R_RESET", "emicorr": "R_MIREMI",
    "flat": "R_FLAT", "photom": "R_PHOTOM", "distortion": "R_DISTOR", "specwcs": "R_SPCWCS",
    "area": "R_AREA", "persat": "R_PERSAT", "trapdensity": "R_TRPDEN", "trappars": "R_TRPPAR",
    "filteroffset": "R_FILOFF", "apcorr": "R_APCORR", "abvegaoffset": "R_ABVEGA",
    "tsophot": "R_TSOPHT", "psfmask": "R_PSFMSK", "wavelengthrange": "R_WAVRAN",
    "extract1d": "R_EXTR1D", "throughput": "R_THROUP", "nrm": "R_NRM", "sflat": "R_SFLAT",
    "dflat": "R_DFLAT", "fflat": "R_FFLAT", "bkg": "R_BKG", "pathloss": "R_PTHLOS",
}


def reftype_keyword(reftype):
    """The ``R_*`` primary-header keyword recording a reference type."""
    return REFTYPE_KEYWORDS.get(reftype.lower(), "R_" + reftype.upper().replace("-", "")[:6])


def crds_cache_root():
    """The CRDS cache folder the client will use."""
    return Path(os.environ.get("CRDS_PATH") or Path.home() / "crds_cache")


def operational_context():
    """Operational context named by the cache's server_config (offline), or None."""
    cfg = crds_cache_root() / "config" / "jwst" / "server_config"
    if cfg.is_file():
        try:
            info = ast.literal_eval(cfg.read_text())
            ctx = info.get("operational_context")
            if ctx:
                return ctx
        except (ValueError, SyntaxError):
            log.warning("%s: cannot parse CRDS server_config", cfg)
    return None


def resolve_context(pinned=None, requested=None):
    """The context to use and why.

    Parameters
    ----------
    pinned : str, optional
        The recipe's ``crds.context``.
    requested : str, optional
        ``--crds-context`` / ``crds_context=``.

    Returns
    -------
    (context, source) : (str, str)
    """
    if pinned:
        if requested and requested != pinned:
            log.warning("recipe is pinned to %s; ignoring requested context %s (unpin the recipe to change it)",
                        pinned, requested)
        return pinned, "recipe pin"
    if requested:
        return requested, "--crds-context"
    env = os.environ.get("CRDS_CONTEXT")
    if env:
        return env, "CRDS_CONTEXT"
    op = operational_context()
    if op:
        return op, "cache operational context"
    crds = _import_crds()
    try:
        return crds.get_context_name("jwst"), "CRDS server operational context"
    except BaseException as exc:  # crds may sys.exit() when unconfigured
        raise ReferenceFileError(
            f"no CRDS context: pin one in the recipe, pass --crds-context, or set CRDS_CONTEXT "
            f"(CRDS_PATH={crds_cache_root()}: {_short(exc)})") from None


def check_context(context):
    """Raise a clear error when ``context`` is neither cached nor obtainable from a server."""
    mapping = crds_cache_root() / "mappings" / "jwst" / context
    if mapping.is_file():
        return
    if not os.environ.get("CRDS_SERVER_URL"):
        raise ReferenceFileError(
            f"{context}: CRDS context not in the cache at {crds_cache_root()} and no CRDS server is "
            f"configured (CRDS_SERVER_URL unset)")


def context_reftypes(context, instrument):
    """Reference types the context defines for an instrument (lower case), or None if unknown."""
    if not instrument:
        return None
    crds = _import_crds()
    try:
        pmap = crds.get_cached_mapping(context)
        return {str(k).lower() for k in pmap.get_imap(str(instrument).lower()).selections.keys()}
    except BaseException:  # noqa: BLE001 - let the lookup itself report problems
        return None


#: FITS keyword -> JWST data-model path for the keywords CRDS JWST rules select on. Giving crds
#: the paths directly spares it loading stdatamodels to translate (seconds per process); when a
#: context needs a parameter this table lacks, the full FITS header is passed instead.
DATAMODEL_PATHS = {
    "TELESCOP": "META.TELESCOPE", "INSTRUME": "META.INSTRUMENT.NAME",
    "DETECTOR": "META.INSTRUMENT.DETECTOR", "FILTER": "META.INSTRUMENT.FILTER",
    "PUPIL": "META.INSTRUMENT.PUPIL", "GRATING": "META.INSTRUMENT.GRATING",
    "BAND": "META.INSTRUMENT.BAND", "CHANNEL": "META.INSTRUMENT.CHANNEL",
    "MODULE": "META.INSTRUMENT.MODULE", "CORONMSK": "META.INSTRUMENT.CORONAGRAPH",
    "LAMP": "META.INSTRUMENT.LAMP_STATE", "FXD_SLIT": "META.INSTRUMENT.FIXED_SLIT",
    "EXP_TYPE": "META.EXPOSURE.TYPE", "READPATT": "META.EXPOSURE.READPATT",
    "NGROUPS": "META.EXPOSURE.NGROUPS", "NINTS": "META.EXPOSURE.NINTS",
    "NFRAMES": "META.EXPOSURE.NFRAMES", "GROUPGAP": "META.EXPOSURE.GROUPGAP",
    "SUBARRAY": "META.SUBARRAY.NAME", "SUBSTRT1": "META.SUBARRAY.XSTART",
    "SUBSTRT2": "META.SUBARRAY.YSTART", "SUBSIZE1": "META.SUBARRAY.XSIZE",
    "SUBSIZE2": "META.SUBARRAY.YSIZE", "FASTAXIS": "META.SUBARRAY.FASTAXIS",
    "SLOWAXIS": "META.SUBARRAY.SLOWAXIS", "DATE-OBS": "META.OBSERVATION.DATE",
    "TIME-OBS": "META.OBSERVATION.TIME", "TSOVISIT": "META.VISIT.TSOVISIT",
    "PATTTYPE": "META.DITHER.PRIMARY_TYPE",
}


def context_parkeys(context, instrument):
    """Data-model paths the context's rules for ``instrument`` select on (upper case), or None."""
    crds = _import_crds()
    try:
        pmap = crds.get_cached_mapping(context)
        keys = set(pmap.get_imap(str(instrument).lower()).get_required_parkeys())
        return {str(k).upper() for k in keys} | {"META.INSTRUMENT.NAME"}
    except BaseException:  # noqa: BLE001
        return None


def selection_header(header, context):
    """The header to give ``crds.getreferences``: data-model paths when they cover the context's
    parameters (fast), else the FITS keywords for crds to translate (complete)."""
    params = crds_header(header)
    paths = {DATAMODEL_PATHS[k]: v for k, v in params.items() if k in DATAMODEL_PATHS}
    paths.update({k: v for k, v in params.items() if k.startswith("META.")})
    needed = context_parkeys(context, header.get("INSTRUME"))
    if needed is None:
        return params
    known_paths = set(DATAMODEL_PATHS.values())
    # a parameter we know the keyword of but the header lacks is UNDEFINED either way
    untranslatable = {k for k in needed - {"REFTYPE"} if k not in paths and k not in known_paths}
    return params if untranslatable else paths


def crds_header(header):
    """Header values as strings, the form ``crds.getreferences`` takes."""
    out = {}
    for key, value in dict(header).items():
        if not key or key in ("COMMENT", "HISTORY", ""):
            continue
        if isinstance(value, bool):
            value = "T" if value else "F"
        out[key.upper()] = str(value)
    return out


def best_references(header, reftypes, context):
    """Local paths of the best references for an input.

    Parameters
    ----------
    header : Header-like
        The input's primary header (FITS keywords).
    reftypes : iterable of str
        Reference types (lower case).
    context : str
        CRDS context (``jwst_0001.pmap``).

    Returns
    -------
    dict
        ``{reftype: path}``; the path is None where CRDS says the type does not apply (N/A).

    Raises
    ------
    ReferenceFileError
        The context is not available, a rule cannot select a file, or a chosen file is missing.
    """
    reftypes = sorted({r.lower() for r in reftypes})
    if not reftypes:
        return {}
    check_context(context)
    crds = _import_crds()
    params = selection_header(header, context)
    out = {}
    known = context_reftypes(context, header.get("INSTRUME"))
    if known is not None:
        for reftype in reftypes:
            if reftype not in known:
                out[reftype] = None      # the context does not define this type for the instrument
    pending = [r for r in reftypes if r not in out]
    if len(pending) > 1:
        # One call for all types (fast); any trouble -> per type below, for a precise message.
        try:
            result = crds.getreferences(params, reftypes=pending, context=context, observatory="jwst")
            batch = {}
            for r in pending:
                value = str(result.get(r, ""))
                if value.upper().startswith("NOT FOUND"):
                    if "n/a" not in value.lower():
                        batch = None
                        break
                    batch[r] = None
                elif value:
                    batch[r] = value
                else:
                    batch = None
                    break
            if batch is not None:
                out.update(batch)
        except BaseException:  # noqa: BLE001
            pass
    for reftype in reftypes:
        if reftype in out:
            continue
        try:
            result = crds.getreferences(params, reftypes=[reftype], context=context, observatory="jwst")
            value = result.get(reftype)
        except BaseException as exc:  # noqa: BLE001 - crds raises many types, and SystemExit
            text = _short(exc)
            if "not applicable" in text.lower() or "n/a" in text.lower():
                out[reftype] = None
                continue
            if "unknown reference type" in text.lower() or "not in" in text.lower() and "reftype" in text.lower():
                out[reftype] = None
                continue
            raise ReferenceFileError(f"{context}: cannot select a {reftype.upper()} reference: {text}") from None
        if value is None or str(value).upper().startswith("NOT FOUND"):
            if value is not None and "n/a" not in str(value).lower():
                raise ReferenceFileError(f"{context}: cannot select a {reftype.upper()} reference: {value}")
            out[reftype] = None
        else:
            out[reftype] = value
    return out


def parameter_reference(header, class_name, context):
    """Parameters from the CRDS ``pars-<class_name>`` reference, or None when there is none.

    Returns
    -------
    (parameters, source) or None
        ``parameters`` is the ``parameters`` mapping of the ASDF file; ``source`` names the file.
    """
    reftype = f"pars-{class_name.lower()}"
    known = context_reftypes(context, header.get("INSTRUME"))
    if known is not None and reftype not in known:
        return None
    try:
        refs = best_references(header, [reftype], context)
    except ReferenceFileError as exc:
        log.debug("no %s: %s", reftype, exc)
        return None
    path = refs.get(reftype)
    if not path:
        return None
    return read_parameter_file(path), f"CRDS {reftype} ({Path(path).name}, {context})"


class _TagTolerantLoader:
    """A YAML loader that reads ASDF tags (``!core/asdf-1.1.0`` ...) as plain values."""

    @staticmethod
    def load(text):
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def plain(loader, suffix, node):
            if isinstance(node, yaml.MappingNode):
                return loader.construct_mapping(node, deep=True)
            if isinstance(node, yaml.SequenceNode):
                return loader.construct_sequence(node, deep=True)
            return loader.construct_scalar(node)

        Loader.add_multi_constructor("!", plain)
        Loader.add_multi_constructor("tag:", plain)
        return yaml.load(text, Loader=Loader)


def read_parameter_file(path):
    """The ``parameters`` mapping of a jwst parameter file (ASDF; ``class``, ``name``, ``parameters``).

    Parameter files are YAML-only ASDF documents: they are read as YAML (fast); anything else
    (binary blocks) goes through the asdf library.
    """
    raw = Path(path).read_bytes()
    if b"\xd3BLK" not in raw:     # no binary blocks: the whole file is a YAML document
        try:
            tree = _TagTolerantLoader.load(raw.decode("utf-8"))
            if isinstance(tree, dict) and "parameters" in tree:
                params = dict(tree.get("parameters") or {})
                if tree.get("steps") is not None and "steps" not in params:
                    params["steps"] = tree["steps"]
                return _plain(params)
        except Exception:  # noqa: BLE001 - fall back to the asdf library
            pass
    import asdf

    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = af.tree
            params = dict(tree.get("parameters") or {})
            steps = tree.get("steps")
            if steps is not None and "steps" not in params:
                params["steps"] = steps
            return _plain(params)
    except Exception as exc:
        raise ReferenceFileError(f"{path}: cannot read parameter reference ({_short(exc)})") from None


def pipeline_step_parameters(pipeline_params):
    """``{alias: {...}}`` from a pipeline-level parameter reference's ``steps`` entry (dict or list form)."""
    steps = (pipeline_params or {}).get("steps") or {}
    out = {}
    if isinstance(steps, dict):
        for alias, vals in steps.items():
            out[alias] = dict(vals or {})
    else:
        for entry in steps:
            name = entry.get("name")
            if name:
                out[name] = dict(entry.get("parameters") or {})
    return out


def crds_version():
    """Installed crds client version (no network)."""
    try:
        from importlib.metadata import version

        return version("crds")
    except Exception:  # pragma: no cover
        return "unknown"


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return obj.item()
        except Exception:
            return obj
    return obj


def _import_crds():
    try:
        import crds
    except ImportError as exc:  # pragma: no cover
        raise ReferenceFileError(f"the crds client is not installed ({exc})") from None
    return crds


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
