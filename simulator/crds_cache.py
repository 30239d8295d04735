"""A local CRDS cache (mappings + references) for simulated exposures, usable offline.

:func:`build_crds_cache` writes, under ``root``::

    config/jwst/server_config           operational_context = the last context built
    config/jwst/ref_cache_subdir_mode   'instrument'
    mappings/jwst/jwst_0001.pmap, jwst_0002.pmap, jwst_<instr>_000N.imap,
                  jwst_<instr>_<reftype>_000N.rmap
    references/jwst/{fgs,miri,nircam,niriss,nirspec,system}/
                  jwst_<instr>_<reftype>_NNNN.fits   (MASK, SATURATION, SUPERBIAS [near-IR],
                                                    LINEARITY, GAIN, READNOISE, DARK)
                  jwst_<instr>_pars-<step>_NNNN.asdf
                  jwst_<instr>_{distortion,photom,area,flat,apcorr}_NNNN.{asdf,fits}

Point ``CRDS_PATH`` at ``root`` and leave ``CRDS_SERVER_URL`` unset; then
``crds.getreferences(header, reftypes=[...], context='jwst_0001.pmap', observatory='jwst')``
works with no server.

Selection rules
---------------
* Detector references: ``Match`` on ``(META.INSTRUMENT.DETECTOR, META.SUBARRAY.NAME)``
  (DARK also ``META.EXPOSURE.READPATT``), then ``UseAfter`` on
  ``(META.OBSERVATION.DATE, META.OBSERVATION.TIME)`` from 2022-01-01 00:00:00. A DARK is made
  for the largest NGROUPS requested for its (detector, subarray, READPATT).
* ``pars-*`` references: ``Match`` on ``(META.INSTRUMENT.DETECTOR, META.EXPOSURE.TYPE)``,
  one row per detector with EXP_TYPE ``N/A`` (any) and, for pars-detector1pipeline, a row for
  the instrument's time-series EXP_TYPEs.
* Stage-2 imaging references (:mod:`simulator.stage2_references`): DISTORTION (ASDF,
  ``jwst_<instr>_distortion_NNNN.asdf``) ``Match`` on ``(META.INSTRUMENT.DETECTOR,)``;
  PHOTOM on ``(META.INSTRUMENT.DETECTOR,)`` (one table of every filter / pupil);
  AREA on ``(META.INSTRUMENT.DETECTOR, META.SUBARRAY.NAME)``; FLAT on
  ``(META.INSTRUMENT.DETECTOR, META.SUBARRAY.NAME, META.INSTRUMENT.FILTER,
  META.INSTRUMENT.PUPIL)`` (MIRI without PUPIL), all then ``UseAfter``. FILTEROFFSET is
  ``N/A``. A configuration may name its filter and pupil (4th and 5th items); a 3-item
  configuration gets a FLAT for every (filter, pupil) that :data:`simulator.modes.MODES`
  uses with its detector.
* APCORR (stage 3, source_catalog; :func:`simulator.stage2_references.write_apcorr`):
  ``Match`` on ``(META.INSTRUMENT.DETECTOR,)``, one table per detector with rows for the
  imaging filters (FILTER ``F*``, no coronagraphic, grism or NRM pupil) that its configurations
  name or, for a 3-item configuration, that the calwebb_image3 modes of
  :data:`simulator.modes.MODES` (EXP_TYPE NRC_IMAGE, NIS_IMAGE, MIR_IMAGE) use with it; a
  detector of the same instrument without such filters is ``N/A`` in the rmap (the catalog
  then measures its aperture correction on the image).
* Other reference types a detector1 run may ask for (IPC, PERSAT, TRAPDENSITY, TRAPPARS,
  REFPIX, RSCD, RESET, EMICORR, PICTUREFRAME) are ``N/A`` in the .imap files: CRDS answers
  "not applicable", and the step is skipped as jwst would.

Contexts
--------
============  =============================================================================
context       content
============  =============================================================================
jwst_0001     version-1 references everywhere (``detector_properties(..., version=1)``);
              pars-jumpstep ``rejection_threshold`` = :data:`JUMP_REJECTION_THRESHOLD` [1]
              = 4.0
jwst_0002     GAIN and READNOISE switch to version 2 (gain +3 %, read noise +4 %; new
              ``_gain_0002.rmap`` / ``_readnoise_0002.rmap``); pars-jumpstep
              ``rejection_threshold`` = 5.0; everything else is shared with jwst_0001.
============  =============================================================================

Parameter references (ASDF trees as jwst writes them: ``class``, ``name``, ``parameters``,
``meta``)
-------------------------------------------------------------------------------------------
* pars-jumpstep (``jwst.jump.jump_step.JumpStep``, name ``jump``): :data:`JUMP_PARAMETERS`
  with ``rejection_threshold`` from :data:`JUMP_REJECTION_THRESHOLD`.
* pars-rampfitstep (``jwst.ramp_fitting.ramp_fit_step.RampFitStep``, name ``ramp_fit``):
  :data:`RAMPFIT_PARAMETERS` (both contexts).
* pars-detector1pipeline (``jwst.pipeline.calwebb_detector1.Detector1Pipeline``, name
  ``Detector1Pipeline``): ``parameters`` :data:`DETECTOR1_PARAMETERS` and a ``steps`` list of
  ``{class, name, parameters: {skip: ...}}``; the time-series file (EXP_TYPE in
  :data:`TSO_EXP_TYPES`) skips :data:`TSO_SKIPPED_STEPS` (persistence and charge_migration;
  MIRI also firstframe, lastframe, rscd), the default file skips nothing.

Idempotency: a reference file whose header ``SIMSPEC`` equals the spec of what would be
written is kept; mapping and parameter files are rewritten only when their text changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from astropy.io import fits

from .detectors import get_detector, get_subarray
from .references import USEAFTER, reference_spec, write_reference

__all__ = ["build_crds_cache", "JUMP_REJECTION_THRESHOLD", "JUMP_PARAMETERS",
           "RAMPFIT_PARAMETERS", "DETECTOR1_PARAMETERS", "TSO_EXP_TYPES", "TSO_SKIPPED_STEPS",
           "mapping_sha1", "INSTRUMENT_FOLDERS"]

INSTRUMENT_FOLDERS = ("fgs", "miri", "nircam", "niriss", "nirspec", "system")

#: pars-jumpstep rejection_threshold per context number
JUMP_REJECTION_THRESHOLD = {1: 4.0, 2: 5.0}
JUMP_PARAMETERS = {
    "rejection_threshold": None,          # filled per context
    "three_group_rejection_threshold": 6.0,
    "four_group_rejection_threshold": 5.0,
    "flag_4_neighbors": True,
    "max_jump_to_flag_neighbors": 1000.0,
    "min_jump_to_flag_neighbors": 10.0,
}
RAMPFIT_PARAMETERS = {"suppress_one_group": True, "weighting": "optimal"}
DETECTOR1_PARAMETERS = {"save_calibrated_ramp": False}
TSO_EXP_TYPES = {"NIRCAM": "NRC_TSIMAGE|NRC_TSGRISM", "NIRISS": "NIS_SOSS",
                 "NIRSPEC": "NRS_BRIGHTOBJ", "MIRI": "MIR_LRS-SLITLESS"}
TSO_SKIPPED_STEPS = {"default": ("persistence", "charge_migration"),
                     "MIRI": ("persistence", "charge_migration", "firstframe", "lastframe",
                              "rscd")}
_STEP_CLASSES = {
    "persistence": "jwst.persistence.persistence_step.PersistenceStep",
    "charge_migration": "jwst.charge_migration.charge_migration_step.ChargeMigrationStep",
    "firstframe": "jwst.firstframe.firstframe_step.FirstFrameStep",
    "lastframe": "jwst.lastframe.lastframe_step.LastFrameStep",
    "rscd": "jwst.rscd.rscd_step.RscdStep",
}
_PARS = {
    "pars-jumpstep": ("jwst.jump.jump_step.JumpStep", "jump"),
    "pars-rampfitstep": ("jwst.ramp_fitting.ramp_fit_step.RampFitStep", "ramp_fit"),
    "pars-detector1pipeline": ("jwst.pipeline.calwebb_detector1.Detector1Pipeline",
                               "Detector1Pipeline"),
}
_NOT_APPLICABLE = {
    "near-IR": ("IPC", "PERSAT", "TRAPDENSITY", "TRAPPARS", "REFPIX", "PICTUREFRAME",
                "FILTEROFFSET"),
    "MIRI": ("IPC", "RSCD", "RESET", "EMICORR", "FILTEROFFSET"),
}
#: stage-2 reference type -> first-level Match keys (besides the detector) and file extension
_STAGE2 = {
    "distortion": ((), ".asdf"),
    "photom": ((), ".fits"),
    "area": (("META.SUBARRAY.NAME",), ".fits"),
    "flat": (("META.SUBARRAY.NAME", "META.INSTRUMENT.FILTER", "META.INSTRUMENT.PUPIL"), ".fits"),
}
#: EXP_TYPEs that calwebb_image3 (source_catalog) processes: default APCORR filters
IMAGE3_EXP_TYPES = ("NRC_IMAGE", "NIS_IMAGE", "MIR_IMAGE")
#: pupils through which a circular-aperture correction of the Airy PSF does not apply
_NON_IMAGING_PUPILS = ("NRM", "MASKRND", "MASKBAR", "GRISMR", "GRISMC", "GR150R", "GR150C",
                       "WLP8", "WLM8")
_DETECTOR_REFTYPES = ("mask", "saturation", "superbias", "linearity", "gain", "readnoise",
                      "dark")
_VERSIONED = ("gain", "readnoise")
_USEAFTER_KEY = "2022-01-01 00:00:00"


def mapping_sha1(text: str) -> str:
    """CRDS mapping checksum: SHA-1 of the text with every line containing 'sha1sum' removed."""
    kept = "".join(line for line in text.splitlines(keepends=True) if "sha1sum" not in line)
    return hashlib.sha1(kept.encode("utf-8")).hexdigest()


def _mapping_text(header: dict, selector: str) -> str:
    lines = ["header = {"]
    for key in sorted(header):
        lines.append(f"    {key!r} : {header[key]!r},")
    lines.append("    'sha1sum' : 'SHA1SUM',")
    lines.append("}")
    lines.append("")
    lines.append(f"selector = {selector}")
    text = "\n".join(lines) + "\n"
    return text.replace("'SHA1SUM'", repr(mapping_sha1(text)))


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


def _pars_tree(kind: str, instrument: str, context_number: int, tso: bool) -> dict:
    cls, name = _PARS[kind]
    tree = {"class": cls, "name": name}
    if kind == "pars-jumpstep":
        params = dict(JUMP_PARAMETERS)
        params["rejection_threshold"] = JUMP_REJECTION_THRESHOLD[context_number]
        tree["parameters"] = params
    elif kind == "pars-rampfitstep":
        tree["parameters"] = dict(RAMPFIT_PARAMETERS)
    else:
        tree["parameters"] = dict(DETECTOR1_PARAMETERS)
        skipped = TSO_SKIPPED_STEPS.get(instrument, TSO_SKIPPED_STEPS["default"]) if tso else ()
        tree["steps"] = [{"class": _STEP_CLASSES[s], "name": s, "parameters": {"skip": True}}
                         for s in skipped]
    tree["meta"] = {
        "author": "webbcal simulator",
        "date": "2022-08-01T00:00:00",
        "description": f"{kind} for {instrument}{' time series' if tso else ''} "
                       f"(context {context_number:04d})",
        "instrument": {"name": instrument},
        "origin": "WEBBCAL",
        "pedigree": "GROUND",
        "reftype": kind,
        "telescope": "JWST",
        "useafter": USEAFTER,
    }
    return tree


def _write_asdf(path: Path, tree: dict) -> None:
    """Write an ASDF file holding only a YAML tree (no binary blocks).

    The text is written directly (ASDF 1.0.0 / standard 1.5.0 header, ``core/asdf-1.1.0``
    root tag): ``asdf.open`` reads it like a file written by the asdf library, and the
    output is byte-for-byte reproducible (no import of the asdf plugin machinery either).
    """
    import yaml
    body = yaml.safe_dump(tree, sort_keys=False, default_flow_style=False)
    text = ("#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n"
            "--- !core/asdf-1.1.0\n" + body + "...\n")
    _write_if_changed(path, text.encode("utf-8"))


def build_crds_cache(root, configurations, *,
                     contexts=("jwst_0001.pmap", "jwst_0002.pmap")) -> Path:
    """Build (or refresh) a local CRDS cache.

    Parameters
    ----------
    root : str or Path
        Cache root (becomes ``CRDS_PATH``).
    configurations : iterable of (detector, subarray_name, Readout or None[, filter[, pupil]])
        Exposure configurations that need references; a Readout adds a DARK for its
        READPATT; a filter (and pupil) selects the FLAT made (default: every filter / pupil
        :data:`simulator.modes.MODES` uses with the detector).
    contexts : sequence of str
        Context names to write, numbered 1, 2 (at most two: version-1 and version-2 gain /
        readnoise). The last one becomes the operational context.

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    contexts = tuple(contexts)
    if not 1 <= len(contexts) <= 2:
        raise ValueError(f"one or two contexts expected, got {contexts!r}")
    cfg = root / "config" / "jwst"
    maps = root / "mappings" / "jwst"
    refs = root / "references" / "jwst"
    for d in (cfg, maps, *(refs / i for i in INSTRUMENT_FOLDERS)):
        d.mkdir(parents=True, exist_ok=True)

    # ---- collect what is needed ------------------------------------------------------
    # (instrument, reftype) -> {match key tuple: (detector, subarray, readout)}
    needed: dict = {}
    detectors_by_instr: dict = {}
    darks: dict = {}
    stage2: dict = {}   # (instr, reftype) -> {match key: (detector, subarray, filter, pupil)}
    apcorr: dict = {}   # instr -> {detector: set of (filter, pupil)}
    for entry in configurations:
        detector, subname, readout = entry[:3]
        det = get_detector(detector)
        _stage2_needs(stage2, det, get_subarray(det.name, subname), entry[3:])
        _apcorr_needs(apcorr, det, entry[3:])
        sub = get_subarray(det.name, subname)
        instr = det.instrument
        detectors_by_instr.setdefault(instr, set()).add(det.name)
        for rt in _DETECTOR_REFTYPES:
            if rt == "superbias" and det.is_miri:
                continue
            if rt == "dark":
                if readout is None:
                    continue
                key = (det.name, sub.name, readout.readpatt)
                prev = darks.get(key)
                if prev is None or readout.ngroups > prev[2].ngroups:
                    darks[key] = (det.name, sub, readout)
                continue
            needed.setdefault((instr, rt), {})[(det.name, sub.name)] = (det.name, sub, None)
    for key, value in darks.items():
        needed.setdefault((get_detector(key[0]).instrument, "dark"), {})[key] = value

    # ---- reference files ---------------------------------------------------------------
    # rows[(instr, rt, version)] = {match key: filename}
    rows: dict = {}
    versions_needed = (1, 2) if len(contexts) == 2 else (1,)
    for (instr, rt), entries in sorted(needed.items()):
        versions = versions_needed if rt in _VERSIONED else (1,)
        counter = 0
        for version in versions:
            for key in sorted(entries):
                det_name, sub, readout = entries[key]
                counter += 1
                fname = f"jwst_{instr.lower()}_{rt}_{counter:04d}.fits"
                path = refs / instr.lower() / fname
                spec = reference_spec(rt, det_name, sub, version=version, readout=readout)
                if not (path.exists() and _header_value(path, "SIMSPEC") == spec):
                    write_reference(rt, path, det_name, sub, version=version, readout=readout)
                rows.setdefault((instr, rt, version), {})[key] = fname

    # ---- stage-2 references (DISTORTION, PHOTOM, AREA, FLAT) -----------------------------
    for (instr, rt), entries in sorted(stage2.items()):
        ext = _STAGE2[rt][1]
        for counter, key in enumerate(sorted(entries), start=1):
            det_name, sub, filt, pupil = entries[key]
            fname = f"jwst_{instr.lower()}_{rt}_{counter:04d}{ext}"
            _write_stage2(refs / instr.lower() / fname, rt, det_name, sub, filt, pupil)
            rows.setdefault((instr, rt, 1), {})[key] = fname

    # ---- APCORR (stage 3) ------------------------------------------------------------------
    apcorr_rows = {}     # instr -> {(detector,): filename or None (N/A)}
    for instr, per_det in sorted(apcorr.items()):
        if not any(per_det.values()):
            continue                          # no imaging filter: no APCORR rule at all
        counter = 0
        table = {}
        for det_name in sorted(per_det):
            filters = sorted(per_det[det_name], key=lambda fp: (fp[0], fp[1] or ""))
            if not filters:
                table[(det_name,)] = None
                continue
            counter += 1
            fname = f"jwst_{instr.lower()}_apcorr_{counter:04d}.fits"
            _write_apcorr(refs / instr.lower() / fname, det_name, filters)
            table[(det_name,)] = fname
        apcorr_rows[instr] = table

    # ---- parameter references --------------------------------------------------------
    pars_rows: dict = {}   # (instr, kind, ctxnum) -> {(detectors, exptype): filename}
    for instr, dets in sorted(detectors_by_instr.items()):
        detpat = "|".join(sorted(dets))
        for kind in _PARS:
            per_context = kind == "pars-jumpstep"
            for ctxnum in range(1, len(contexts) + 1):
                if not per_context and ctxnum > 1:
                    pars_rows[(instr, kind, ctxnum)] = pars_rows[(instr, kind, 1)]
                    continue
                variants = [(False, "N/A")]
                if kind == "pars-detector1pipeline" and instr in TSO_EXP_TYPES:
                    variants.append((True, TSO_EXP_TYPES[instr]))
                table = {}
                for idx, (tso, exptype) in enumerate(variants):
                    number = (ctxnum - 1) * len(variants) + idx + 1
                    fname = f"jwst_{instr.lower()}_{kind}_{number:04d}.asdf"
                    _write_asdf(refs / instr.lower() / fname,
                                _pars_tree(kind, instr, ctxnum, tso))
                    table[(detpat, exptype)] = fname
                pars_rows[(instr, kind, ctxnum)] = table

    # ---- mappings ------------------------------------------------------------------------
    for ctxnum, pmap_name in enumerate(contexts, start=1):
        imap_names = {}
        for instr in sorted(detectors_by_instr):
            selector = {}
            for rt in _DETECTOR_REFTYPES:
                versioned = rt in _VERSIONED and ctxnum in rows_versions(rows, instr, rt)
                version = ctxnum if versioned else 1
                if (instr, rt, version) not in rows:
                    continue
                rmap_name = f"jwst_{instr.lower()}_{rt}_{version:04d}.rmap"
                _write_rmap(maps / rmap_name, instr, rt, rows[(instr, rt, version)],
                            dark=(rt == "dark"))
                selector[rt.upper()] = rmap_name
            for rt in _STAGE2:
                if (instr, rt, 1) not in rows:
                    continue
                rmap_name = f"jwst_{instr.lower()}_{rt}_0001.rmap"
                _write_rmap(maps / rmap_name, instr, rt, rows[(instr, rt, 1)], dark=False,
                            first=_stage2_parkeys(instr, rt))
                selector[rt.upper()] = rmap_name
            if instr in apcorr_rows:
                rmap_name = f"jwst_{instr.lower()}_apcorr_0001.rmap"
                _write_rmap(maps / rmap_name, instr, "apcorr", apcorr_rows[instr], dark=False,
                            first=("META.INSTRUMENT.DETECTOR",))
                selector["APCORR"] = rmap_name
            for kind in _PARS:
                table = pars_rows[(instr, kind, ctxnum)]
                number = ctxnum if kind == "pars-jumpstep" else 1
                rmap_name = f"jwst_{instr.lower()}_{kind}_{number:04d}.rmap"
                _write_pars_rmap(maps / rmap_name, instr, kind, table)
                selector[kind.upper()] = rmap_name
            for rt in _NOT_APPLICABLE["MIRI" if instr == "MIRI" else "near-IR"]:
                selector.setdefault(rt, "N/A")
            imap_name = f"jwst_{instr.lower()}_{ctxnum:04d}.imap"
            header = {"mapping": "INSTRUMENT", "observatory": "JWST", "instrument": instr,
                      "name": imap_name, "parkey": ("REFTYPE",),
                      "derived_from": "generated by webbcal simulator"}
            _write_if_changed(maps / imap_name,
                              _mapping_text(header, _pretty_dict(selector)).encode())
            imap_names[instr] = imap_name
        header = {"mapping": "PIPELINE", "observatory": "JWST", "name": pmap_name,
                  "parkey": ("META.INSTRUMENT.NAME",),
                  "derived_from": (contexts[ctxnum - 2] if ctxnum > 1
                                   else "generated by webbcal simulator")}
        _write_if_changed(maps / pmap_name,
                          _mapping_text(header, _pretty_dict(imap_names)).encode())

    server_config = {"observatory": "jwst", "operational_context": contexts[-1],
                     "bad_files_list": [], "last_synced": "offline", "force_remote_mode": False}
    _write_if_changed(cfg / "server_config", (repr(server_config) + "\n").encode())
    _write_if_changed(cfg / "ref_cache_subdir_mode", b"instrument")
    return root


def rows_versions(rows: dict, instr: str, rt: str) -> set:
    """Versions for which ``rows`` holds (instr, rt) references."""
    return {v for (i, r, v) in rows if i == instr and r == rt}


def _header_value(path: Path, key: str):
    try:
        return fits.getval(path, key)
    except (KeyError, OSError):
        return None


def _pretty_dict(d: dict) -> str:
    lines = ["{"]
    for key in sorted(d):
        lines.append(f"    {key!r} : {d[key]!r},")
    lines.append("}")
    return "\n".join(lines)


def _useafter(fname: str) -> str:
    return f"UseAfter({{\n        {_USEAFTER_KEY!r} : {fname!r},\n    }})"


def _write_rmap(path: Path, instr: str, rt: str, table: dict, *, dark: bool,
                first: tuple | None = None) -> None:
    if first is None:
        first = ("META.INSTRUMENT.DETECTOR", "META.SUBARRAY.NAME")
        if dark:
            first = first + ("META.EXPOSURE.READPATT",)
    parkey = (first, ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME"))
    header = {"mapping": "REFERENCE", "observatory": "JWST", "instrument": instr,
              "filekind": rt.upper(), "name": path.name, "parkey": parkey,
              "classes": ("Match", "UseAfter"), "derived_from": "generated by webbcal simulator"}
    body = ["Match({"]
    for key in sorted(table):
        # None: not applicable for this key (CRDS answers "NOT FOUND n/a")
        value = "'N/A'" if table[key] is None else _useafter(table[key])
        body.append(f"    {tuple(key)!r} : {value},")
    body.append("})")
    _write_if_changed(path, _mapping_text(header, "\n".join(body)).encode())


def _write_pars_rmap(path: Path, instr: str, kind: str, table: dict) -> None:
    parkey = (("META.INSTRUMENT.DETECTOR", "META.EXPOSURE.TYPE"),
              ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME"))
    header = {"mapping": "REFERENCE", "observatory": "JWST", "instrument": instr,
              "filekind": kind.upper(), "name": path.name, "parkey": parkey,
              "classes": ("Match", "UseAfter"), "derived_from": "generated by webbcal simulator"}
    body = ["Match({"]
    for key in sorted(table):
        body.append(f"    {tuple(key)!r} : {_useafter(table[key])},")
    body.append("})")
    _write_if_changed(path, _mapping_text(header, "\n".join(body)).encode())


# ---- stage-2 references ------------------------------------------------------------------

def _stage2_parkeys(instr: str, rt: str) -> tuple:
    keys = ("META.INSTRUMENT.DETECTOR",) + _STAGE2[rt][0]
    if instr == "MIRI":
        keys = tuple(k for k in keys if k != "META.INSTRUMENT.PUPIL")
    return keys


def _default_filters(detector: str) -> list:
    """(filter, pupil) pairs :data:`simulator.modes.MODES` uses with a detector."""
    from .modes import MODES

    out = []
    for mode in MODES.values():
        if mode["detector"] == detector and (mode["filter"], mode["pupil"]) not in out:
            out.append((mode["filter"], mode["pupil"]))
    return out


def _stage2_needs(stage2: dict, det, sub, extra: tuple) -> None:
    """Record the DISTORTION, PHOTOM, AREA and FLAT references a configuration needs."""
    instr = det.instrument
    if instr not in ("NIRCAM", "NIRISS", "MIRI"):
        return
    stage2.setdefault((instr, "distortion"), {})[(det.name,)] = (det.name, None, None, None)
    stage2.setdefault((instr, "photom"), {})[(det.name,)] = (det.name, None, None, None)
    stage2.setdefault((instr, "area"), {})[(det.name, sub.name)] = (det.name, sub, None, None)
    if extra:
        filters = [(extra[0], extra[1] if len(extra) > 1 else None)]
    else:
        filters = _default_filters(det.name)
    for filt, pupil in filters:
        if not filt:
            continue
        if instr == "MIRI":
            key = (det.name, sub.name, filt)
        else:
            key = (det.name, sub.name, filt, pupil or "N/A")
        stage2.setdefault((instr, "flat"), {})[key] = (det.name, sub, filt, pupil)


def _apcorr_needs(apcorr: dict, det, extra: tuple) -> None:
    """Record the (filter, pupil) pairs a detector's APCORR reference tabulates."""
    from .modes import MODES

    instr = det.instrument
    if instr not in ("NIRCAM", "NIRISS", "MIRI"):
        return
    if extra:
        pairs = [(extra[0], extra[1] if len(extra) > 1 else None)]
    else:
        pairs = [(m["filter"], m["pupil"]) for m in MODES.values()
                 if m["detector"] == det.name and m["exp_type"] in IMAGE3_EXP_TYPES]
    found = apcorr.setdefault(instr, {}).setdefault(det.name, set())
    for filt, pupil in pairs:
        filt = str(filt or "").upper()
        pupil = None if instr == "MIRI" else str(pupil or "CLEAR").upper()
        if filt.startswith("F") and pupil not in _NON_IMAGING_PUPILS:
            found.add((filt, pupil))


def _write_apcorr(path: Path, det_name: str, filters) -> None:
    from . import stage2_references as S2

    if path.exists() and _header_value(path, "SIMSPEC") == S2.apcorr_reference_spec(det_name, filters):
        return
    S2.write_apcorr(path, det_name, filters)


def _asdf_simspec(path: Path):
    """The ``simspec:`` value in an ASDF file's YAML (read as text; None when absent)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("utf-8", "replace")
    except OSError:
        return None
    for line in head.splitlines():
        line = line.strip()
        if line.startswith("simspec:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    return None


def _write_stage2(path: Path, rt: str, det_name: str, sub, filt, pupil) -> None:
    from . import stage2_references as S2

    spec = S2.stage2_reference_spec(rt, det_name, sub, filt, pupil)
    if rt == "distortion":
        if path.exists() and _asdf_simspec(path) == spec:
            return
        S2.write_distortion(path, det_name)
        return
    if path.exists() and _header_value(path, "SIMSPEC") == spec:
        return
    if rt == "photom":
        S2.write_photom(path, det_name)
    elif rt == "area":
        S2.write_area(path, det_name, sub)
    else:
        S2.write_flat(path, det_name, sub, filt, pupil)
