"""Chunked (out-of-core) execution is bit-identical to in-memory execution.

A tiny simulated NIRCam TSO exposure (SUB64P, 3 groups, 20 integrations) runs through
calwebb_detector1 and the TSO variant of calwebb_image2 twice: in memory (large budget) and with
a memory budget small enough to force many chunks of integrations and of rows. Every array of
rate, rateints and calints must be identical, and so must the provenance keywords.
"""
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

CONTEXT = "jwst_0001.pmap"
ARRAYS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "AREA")


def _run(recipe_name, inputs, out, budget_mib, monkeypatch):
    from runner.recipe import Recipe

    monkeypatch.setenv("WEBBCAL_MEMORY_BUDGET", str(budget_mib))
    return Recipe.load(recipe_name).run(inputs, output_dir=out, crds_context=CONTEXT)


def _assert_same_files(a, b):
    with fits.open(a) as ha, fits.open(b) as hb:
        names_a = [h.name for h in ha]
        assert names_a == [h.name for h in hb]
        for name in ARRAYS:
            if name in names_a:
                x, y = ha[name].data, hb[name].data
                assert x.dtype == y.dtype and x.shape == y.shape, name
                np.testing.assert_array_equal(x, y, err_msg=f"{Path(a).name} {name}")
        if "INT_TIMES" in names_a:
            np.testing.assert_array_equal(ha["INT_TIMES"].data, hb["INT_TIMES"].data)
        pa, pb = ha[0].header, hb[0].header
        for key in pa:
            if key.startswith(("S_", "R_", "WC_")) or key in ("INTSTART", "INTEND", "SUBSTRT2", "SUBSIZE2",
                                                                "PHOTMJSR", "DATAMODL"):
                assert pb.get(key) == pa[key], key
        assert "CHUNKI0" not in pb
        assert [k for k in pa if k.startswith("S_")] == [k for k in pb if k.startswith("S_")]
        for ext in ("SCI",):
            for key in ("BUNIT", "CRPIX1", "CRVAL1"):
                assert ha[ext].header.get(key) == hb[ext].header.get(key), (ext, key)


@pytest.fixture(scope="module")
def tso(tiny_sets, crds_cache):
    return tiny_sets["nircam_tso_image"]


def test_phases_and_declarations():
    from runner import registry
    from runner.chunked import _phases
    from runner.recipe import Recipe

    recipe = Recipe.load("calwebb_detector1")
    hdr = fits.Header({"INSTRUME": "NIRCAM", "TSOVISIT": True, "EXP_TYPE": "NRC_TSIMAGE"})
    plan = recipe.resolve(hdr)
    phases = _phases(plan)
    assert [p[0] for p in phases] == ["integrations", "rows"]
    assert phases[1][1] == 1                     # jump's halo
    assert [r.alias for r in phases[1][2]][:1] == ["jump"]
    assert registry.get("emicorr").chunking is None
    assert registry.get("tso_photometry").chunking is None
    jump = registry.get("jump")
    assert jump.chunking_for(jump.parameter_model()(after_jump_flag_time1=10.0))[0] is None


def test_detector1_chunked_bit_identical(tso, tmp_path, monkeypatch, caplog):
    import logging

    mem = _run("calwebb_detector1", tso.exposures, tmp_path / "mem", 4096, monkeypatch)
    with caplog.at_level(logging.INFO, logger="webbcal.chunked"):
        chk = _run("calwebb_detector1", tso.exposures, tmp_path / "chk", 1.0, monkeypatch)
    text = caplog.text
    assert "chunk(s) by integrations" in text and "chunk(s) by rows" in text
    nchunks = [int(w) for w in text.replace("(", " ").split() if w.isdigit()]
    assert max(nchunks) >= 5                      # really split
    assert [Path(o).name for o in mem[0].outputs] == [Path(o).name for o in chk[0].outputs]
    assert [(r.name, r.status) for r in mem[0].records] == [(r.name, r.status) for r in chk[0].records]
    for a, b in zip(mem[0].outputs, chk[0].outputs):
        _assert_same_files(a, b)
    assert any(o.endswith("_rateints.fits") for o in chk[0].outputs)
    assert not list((tmp_path / "chk").glob(".webbcal-chunks-*"))   # working folder removed


def test_image2_tso_chunked_bit_identical(tso, tmp_path, monkeypatch, caplog):
    import logging

    d1 = _run("calwebb_detector1", tso.exposures, tmp_path / "d1", 4096, monkeypatch)
    rateints = [o for o in d1[0].outputs if o.endswith("_rateints.fits")]
    mem = _run("calwebb_image2", rateints, tmp_path / "mem", 4096, monkeypatch)
    with caplog.at_level(logging.INFO, logger="webbcal.chunked"):
        chk = _run("calwebb_image2", rateints, tmp_path / "chk", 0.5, monkeypatch)
    assert "chunk(s) by integrations" in caplog.text
    assert chk[0].main_output.endswith("_calints.fits")
    _assert_same_files(mem[0].main_output, chk[0].main_output)
    from runner.product import Product

    p = Product.open(chk[0].main_output)
    assert p.wcs is not None and p.kind == "cube"


def test_not_chunkable_plan_falls_back(tso, tmp_path, monkeypatch, caplog):
    """A step with chunking None in the plan: in-memory execution, logged."""
    import logging

    from runner.recipe import Recipe

    monkeypatch.setenv("WEBBCAL_MEMORY_BUDGET", "0.5")
    with caplog.at_level(logging.INFO, logger="webbcal.chunked"):
        res = Recipe.load("calwebb_detector1").run(tso.exposures, output_dir=tmp_path, crds_context=CONTEXT,
                                                   jump={"after_jump_flag_time1": 100.0,
                                                         "after_jump_flag_dn1": 1.0})
    assert "needs the whole product" in caplog.text
    assert res[0].status == "done"
