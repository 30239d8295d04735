"""The local CRDS cache answers crds.getreferences offline, and contexts are honoured."""

import os

import numpy as np
import pytest

crds = pytest.importorskip("crds")

from simulator.crds_cache import JUMP_REJECTION_THRESHOLD, build_crds_cache, mapping_sha1  # noqa: E402
from simulator.ramps import readout_for  # noqa: E402

CONFIGS = [
    ("NRCA1", "SUB64P", readout_for("RAPID", "NRCA1", "SUB64P", nints=1, ngroups=5)),
    ("NRCA1", "SUB64P", readout_for("BRIGHT2", "NRCA1", "SUB64P", nints=1, ngroups=4)),
    ("NRCA1", "SUB64P", readout_for("RAPID", "NRCA1", "SUB64P", nints=1, ngroups=8)),
    ("MIRIMAGE", "SUB64", readout_for("FAST", "MIRIMAGE", "SUB64", nints=2, ngroups=5)),
]


def _reset_crds():
    import crds.core.config
    import crds.core.utils
    crds.core.config.CRDS_REF_SUBDIR_MODE = "None"
    crds.core.utils.clear_function_caches()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = build_crds_cache(tmp_path / "crds", CONFIGS)
    monkeypatch.setenv("CRDS_PATH", str(root))
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    monkeypatch.setenv("CRDS_MODE", "local")
    _reset_crds()
    yield root
    monkeypatch.undo()
    _reset_crds()


def _header(**kw):
    hdr = {"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "SUBARRAY": "SUB64P",
           "DATE-OBS": "2023-05-01", "TIME-OBS": "12:00:00", "EXP_TYPE": "NRC_IMAGE",
           "READPATT": "RAPID"}
    hdr.update(kw)
    return hdr


def _get(hdr, reftypes, context):
    return crds.getreferences(hdr, reftypes=reftypes, context=context, observatory="jwst")


def test_layout(cache):
    assert (cache / "config/jwst/server_config").read_text().count("jwst_0002.pmap") == 1
    assert (cache / "config/jwst/ref_cache_subdir_mode").read_text().strip() == "instrument"
    for instr in ("fgs", "miri", "nircam", "niriss", "nirspec", "system"):
        assert (cache / "references/jwst" / instr).is_dir()
    pmap = (cache / "mappings/jwst/jwst_0001.pmap").read_text()
    stated = [line for line in pmap.splitlines() if "sha1sum" in line][0].split("'")[3]
    assert stated == mapping_sha1(pmap)
    assert crds.get_context_name("jwst") == "jwst_0002.pmap"


def test_getreferences_returns_local_files(cache):
    types = ["mask", "saturation", "superbias", "linearity", "gain", "readnoise", "dark"]
    refs = _get(_header(), types, "jwst_0001.pmap")
    assert set(refs) == set(types)
    for rt, path in refs.items():
        assert os.path.isfile(path), path
        assert path.startswith(str(cache / "references/jwst/nircam"))
        assert os.path.basename(path) == f"jwst_nircam_{rt}_0001.fits" or rt == "dark"
    from astropy.io import fits
    assert fits.getval(refs["dark"], "READPATT") == "RAPID"
    # RAPID dark made for the largest NGROUPS asked for
    assert fits.getval(refs["dark"], "NGROUPS") == 8
    bright = _get(_header(READPATT="BRIGHT2"), ["dark"], "jwst_0001.pmap")["dark"]
    assert bright != refs["dark"] and fits.getval(bright, "NFRAMES") == 2
    # reference types that do not apply answer N/A
    assert _get(_header(), ["ipc"], "jwst_0001.pmap")["ipc"].upper().startswith("NOT FOUND")


def test_contexts_choose_different_gain(cache):
    from astropy.io import fits
    r1 = _get(_header(), ["gain", "readnoise", "mask"], "jwst_0001.pmap")
    r2 = _get(_header(), ["gain", "readnoise", "mask"], "jwst_0002.pmap")
    assert r1["gain"] != r2["gain"] and r1["readnoise"] != r2["readnoise"]
    assert r1["mask"] == r2["mask"]
    assert fits.getval(r1["gain"], "SIMVER") == 1 and fits.getval(r2["gain"], "SIMVER") == 2
    miri = _get(_header(INSTRUME="MIRI", DETECTOR="MIRIMAGE", SUBARRAY="SUB64",
                        EXP_TYPE="MIR_IMAGE", READPATT="FAST"),
                ["gain", "dark", "linearity"], "jwst_0002.pmap")
    assert "miri" in miri["dark"] and fits.getval(miri["gain"], "SIMVER") == 2


def test_pars_references(cache):
    import asdf
    for ctxnum, ctx in ((1, "jwst_0001.pmap"), (2, "jwst_0002.pmap")):
        refs = _get(_header(), ["pars-jumpstep", "pars-rampfitstep", "pars-detector1pipeline"],
                    ctx)
        with asdf.open(refs["pars-jumpstep"]) as af:
            assert af.tree["class"] == "jwst.jump.jump_step.JumpStep"
            assert af.tree["name"] == "jump"
            assert af.tree["meta"]["reftype"] == "pars-jumpstep"
            assert af.tree["parameters"]["rejection_threshold"] == JUMP_REJECTION_THRESHOLD[ctxnum]
        with asdf.open(refs["pars-rampfitstep"]) as af:
            assert af.tree["name"] == "ramp_fit"
        with asdf.open(refs["pars-detector1pipeline"]) as af:
            assert af.tree["steps"] == []
    assert JUMP_REJECTION_THRESHOLD == {1: 4.0, 2: 5.0}
    tso = _get(_header(EXP_TYPE="NRC_TSIMAGE"), ["pars-detector1pipeline"], "jwst_0001.pmap")
    with asdf.open(tso["pars-detector1pipeline"]) as af:
        skipped = {s["name"] for s in af.tree["steps"] if s["parameters"]["skip"]}
    assert skipped == {"persistence", "charge_migration"}


def test_rebuild_is_idempotent(cache):
    import time
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    t = time.perf_counter()
    build_crds_cache(cache, CONFIGS)
    assert time.perf_counter() - t < 1.0
    after = sorted(p for p in cache.rglob("*") if p.is_file())
    assert after == files
    for p in files:
        assert (p.stat().st_mtime_ns, p.read_bytes()) == before[p], p


def test_apcorr_selected_offline(cache):
    """Both contexts select the detector's APCORR; the runner's selection agrees."""
    from astropy.io import fits

    from runner.crds_refs import best_references

    hdr = _header(FILTER="F200W", PUPIL="CLEAR")
    for ctx in ("jwst_0001.pmap", "jwst_0002.pmap"):
        ref = _get(hdr, ["apcorr"], ctx)["apcorr"]
        assert os.path.basename(ref) == "jwst_nircam_apcorr_0001.fits", ref
        assert best_references(hdr, ["apcorr"], ctx) == {"apcorr": ref}
    assert fits.getval(ref, "REFTYPE") == "APCORR" and fits.getval(ref, "DETECTOR") == "NRCA1"
    names = set(np.char.strip(fits.getdata(ref, "APCORR")["filter"].astype(str)))
    assert names == {"F200W"}                         # the filter of the NRCA1 imaging mode
    miri = _get(_header(INSTRUME="MIRI", DETECTOR="MIRIMAGE", SUBARRAY="SUB64", EXP_TYPE="MIR_IMAGE",
                        READPATT="FAST", FILTER="F770W"), ["apcorr"], "jwst_0002.pmap")["apcorr"]
    assert os.path.basename(miri) == "jwst_miri_apcorr_0001.fits"


def test_apcorr_not_applicable_without_imaging_filter(tmp_path, monkeypatch):
    """A detector whose modes have no imaging filter (NRCA3: time series) is N/A for APCORR,
    which the runner turns into 'no reference' (the catalog then measures its correction)."""
    from runner.crds_refs import best_references

    root = build_crds_cache(tmp_path / "crds", [("NRCA1", "SUB64P", None), ("NRCA3", "SUB64P", None),
                                                ("NRCA1", "SUB64P", None, "F150W", "CLEAR")])
    monkeypatch.setenv("CRDS_PATH", str(root))
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    _reset_crds()
    try:
        hdr = _header(DETECTOR="NRCA3", EXP_TYPE="NRC_TSIMAGE", FILTER="F210M", PUPIL="CLEAR")
        assert _get(hdr, ["apcorr"], "jwst_0001.pmap")["apcorr"].upper().startswith("NOT FOUND N/A")
        assert best_references(hdr, ["apcorr"], "jwst_0001.pmap") == {"apcorr": None}
        # a configuration naming a filter adds its rows (besides the mode's F200W)
        from astropy.io import fits

        ref = _get(_header(FILTER="F150W", PUPIL="CLEAR"), ["apcorr"], "jwst_0001.pmap")["apcorr"]
        names = set(np.char.strip(fits.getdata(ref, "APCORR")["filter"].astype(str)))
        assert names == {"F150W", "F200W"}
    finally:
        monkeypatch.undo()
        _reset_crds()
