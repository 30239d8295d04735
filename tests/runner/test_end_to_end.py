"""The runner with real steps, real simulated exposures and a real local CRDS cache."""
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from runner.cli import main
from runner.errors import LockMismatchError, ReferenceFileError, WebbcalError
from runner.execute import prepare
from runner.product import Product
from runner.recipe import Recipe


@pytest.fixture
def crds_env(crds_cache, monkeypatch):
    """The session cache, with crds' function caches cleared (other tests may have used another)."""
    import crds.core.config
    import crds.core.utils

    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    crds.core.config.CRDS_REF_SUBDIR_MODE = "None"
    crds.core.utils.clear_function_caches()
    return crds_cache


@pytest.fixture
def nircam(tiny_sets):
    return Path(tiny_sets["nircam_image"].exposures[0])


@pytest.fixture
def miri(tiny_sets):
    return Path(tiny_sets["miri_image"].exposures[0])


def run_cli(*args):
    return main([str(a) for a in args])


def test_detector1_cli_products_and_provenance(crds_env, nircam, tmp_path, capsys):
    before = nircam.read_bytes()
    assert run_cli("run", "calwebb_detector1", nircam, "-o", tmp_path, "--crds-context", "jwst_0001.pmap") == 0
    assert nircam.read_bytes() == before, "input modified"
    root = nircam.name.replace("_uncal.fits", "")
    rate, rateints = tmp_path / f"{root}_rate.fits", tmp_path / f"{root}_rateints.fits"
    assert rate.is_file() and rateints.is_file()
    hdr = fits.getheader(rate)
    assert hdr["CRDS_CTX"] == "jwst_0001.pmap"
    assert hdr["R_GAIN"].startswith("crds://") and hdr["R_SUPERB"].startswith("crds://")
    assert hdr["S_JUMP"] == "COMPLETE" and hdr["S_RAMP"] == "COMPLETE" and hdr["S_IPC"] == "SKIPPED"
    assert hdr["WC_RECIP"] == "calwebb_detector1" and len(hdr["WC_CHASH"]) == 64
    assert hdr["CAL_VER"] and hdr["CRDS_VER"]
    out = capsys.readouterr().out
    assert "ramp_fit" in out and "peak MiB" in out
    from stdatamodels.jwst import datamodels

    with datamodels.ImageModel(str(rate)) as m:
        m.validate()
        assert m.data.shape == fits.getdata(nircam).shape[-2:]
        assert m.meta.ref_file.gain.name.startswith("crds://")
    with datamodels.CubeModel(str(rateints)) as m:
        m.validate()


def test_pinned_contexts_choose_different_references(crds_env, nircam):
    recipe = Recipe.load("calwebb_detector1")
    meta = Product.open(nircam).meta
    one = prepare(recipe, meta, crds_context="jwst_0001.pmap")
    two = prepare(recipe, meta, crds_context="jwst_0002.pmap")
    assert one.references["ramp_fit"]["gain"] != two.references["ramp_fit"]["gain"]
    assert one.config_hash != two.config_hash
    recipe.data["crds"] = {"context": "jwst_0001.pmap"}
    pinned = prepare(recipe, meta, crds_context="jwst_0002.pmap")
    assert pinned.context == "jwst_0001.pmap" and pinned.context_source == "recipe pin"


def test_crds_parameter_references_apply_to_call_not_run(crds_env, nircam):
    recipe = Recipe.load("calwebb_detector1")
    meta = Product.open(nircam).meta
    called = {rs.alias: rs for rs in prepare(recipe, meta, crds_context="jwst_0002.pmap").plan}
    plain = {rs.alias: rs for rs in prepare(recipe, meta, crds_context="jwst_0002.pmap", apply_crds_pars=False).plan}
    src = str(called["jump"].sources["rejection_threshold"])
    assert "pars-jumpstep" in src
    assert called["jump"].params.rejection_threshold != plain["jump"].params.rejection_threshold
    assert str(plain["jump"].sources["rejection_threshold"]) == "default"
    other = {rs.alias: rs for rs in prepare(recipe, meta, crds_context="jwst_0001.pmap").plan}
    assert other["jump"].params.rejection_threshold != called["jump"].params.rejection_threshold


def test_explain_prints_sources(crds_env, nircam, capsys):
    assert run_cli("explain", "calwebb_detector1", nircam, "--crds-context", "jwst_0002.pmap",
                   "--set", "jump.flag_4_neighbors=false") == 0
    out = capsys.readouterr().out
    assert "pars-jumpstep" in out and "command line" in out and "reference gain" in out


def test_lock_and_locked_run(crds_env, nircam, tmp_path, capsys):
    lock = tmp_path / "run.lock.yaml"
    assert run_cli("lock", "calwebb_detector1", nircam, "-o", lock, "--crds-context", "jwst_0001.pmap") == 0
    text = lock.read_text()
    assert "sha256" in text and "jwst_0001.pmap" in text
    assert run_cli("run", "calwebb_detector1", nircam, "-o", tmp_path / "a", "--crds-context",
                   "jwst_0001.pmap", "--locked", lock) == 0
    code = run_cli("run", "calwebb_detector1", nircam, "-o", tmp_path / "b", "--crds-context",
                   "jwst_0002.pmap", "--locked", lock)
    err = capsys.readouterr().err
    assert code == 1 and "would differ from the lock" in err and "CRDS context jwst_0002.pmap" in err
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").glob("*.fits"))


def test_reproduce_uses_header_context(crds_env, nircam, tmp_path):
    first = tmp_path / "first"
    assert run_cli("run", "calwebb_detector1", nircam, "-o", first, "--crds-context", "jwst_0001.pmap") == 0
    rate = next(first.glob("*_rate.fits"))
    again = tmp_path / "again"
    assert run_cli("reproduce", rate, "--input", nircam, "-o", again) == 0
    redo = next(again.glob("*_rate.fits"))
    assert fits.getheader(redo)["CRDS_CTX"] == "jwst_0001.pmap"
    assert np.array_equal(fits.getdata(rate, "SCI"), fits.getdata(redo, "SCI"), equal_nan=True)


def test_strun_form_and_python_facades(crds_env, nircam, tmp_path):
    out = tmp_path / "strun"
    assert run_cli("calwebb_detector1", nircam, "--steps.jump.rejection_threshold=6",
                   "--output-dir", out, "--crds-context", "jwst_0001.pmap") == 0
    assert list(out.glob("*_rate.fits"))
    from runner.pipelines import Detector1Pipeline

    os.environ["CRDS_CONTEXT"] = "jwst_0001.pmap"
    try:
        product = Detector1Pipeline.call(str(nircam))
        plain = Detector1Pipeline(steps={"jump": {"rejection_threshold": 6.0}}).run(str(nircam))
    finally:
        del os.environ["CRDS_CONTEXT"]
    assert product.kind == "image" and plain.kind == "image"
    assert product.meta["S_RAMP"] == "COMPLETE"


def test_miri_variant_runs_miri_order(crds_env, miri, tmp_path):
    assert run_cli("run", "calwebb_detector1", miri, "-o", tmp_path, "--crds-context", "jwst_0001.pmap") == 0
    hdr = fits.getheader(next(tmp_path.glob("*_rate.fits")))
    assert hdr["WC_VARNT"].startswith("miri")
    assert "S_FRSTFR" in hdr and "S_LASTFR" in hdr


def test_context_not_in_cache(crds_env, nircam, tmp_path, capsys):
    code = run_cli("run", "calwebb_detector1", nircam, "-o", tmp_path, "--crds-context", "jwst_0999.pmap")
    err = capsys.readouterr().err
    assert code == 1 and "jwst_0999.pmap: CRDS context not in the cache" in err
    assert not list(tmp_path.glob("*.fits"))


def test_reference_override_missing_or_wrong_type(crds_env, nircam, tmp_path):
    recipe = Recipe.load("calwebb_detector1")
    with pytest.raises(ReferenceFileError, match="nope.fits: override_gain file not found"):
        recipe.run([nircam], output_dir=tmp_path, crds_context="jwst_0001.pmap",
                   ramp_fit={"override_gain": str(tmp_path / "nope.fits")})
    meta = Product.open(nircam).meta
    readnoise = prepare(recipe, meta, crds_context="jwst_0001.pmap").references["ramp_fit"]["readnoise"]
    with pytest.raises(WebbcalError, match="is a READNOISE reference, expected GAIN"):
        recipe.run([nircam], output_dir=tmp_path, crds_context="jwst_0001.pmap",
                   ramp_fit={"override_gain": readnoise})
    assert not list(tmp_path.glob("*.fits"))


def test_batch_continues_after_bad_input(crds_env, nircam, tmp_path, capsys):
    bad = tmp_path / "broken_uncal.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    code = run_cli("run", "calwebb_detector1", bad, nircam, "-o", tmp_path / "out", "--crds-context", "jwst_0001.pmap")
    captured = capsys.readouterr()
    assert code == 1
    assert "broken_uncal.fits: failed" in captured.out and "1 of 2 inputs failed" in captured.err
    assert len(list((tmp_path / "out").glob("*_rate.fits"))) == 1


def test_single_steps_call_and_run(crds_env, nircam):
    from steps.dq_init.step import DQInitStep
    from steps.jump.step import JumpStep
    from steps.superbias.step import SuperBiasStep

    ramp = DQInitStep.call(str(nircam), crds_context="jwst_0001.pmap")
    assert ramp.kind == "ramp" and ramp.meta["S_DQINIT"] == "COMPLETE"
    assert ramp.meta["R_MASK"].startswith("crds://")
    raw = ramp.data.copy()
    ramp = SuperBiasStep.call(ramp, crds_context="jwst_0001.pmap")
    assert ramp.meta["S_SUPERB"] == "COMPLETE" and not np.array_equal(raw, ramp.data)
    jumped = JumpStep(rejection_threshold=5.0).run(ramp, crds_context="jwst_0001.pmap")
    assert jumped.meta["S_JUMP"] == "COMPLETE"


def test_chain_recipe_runs_stages_in_turn(crds_env, nircam, tmp_path):
    chain = tmp_path / "chain.yaml"
    chain.write_text("chain:\n  - calwebb_detector1\n  - recipe: calwebb_image2\n")
    results = Recipe.load(chain).run([nircam], output_dir=tmp_path / "out", crds_context="jwst_0001.pmap")
    names = sorted(Path(o).name for r in results for o in r.outputs)
    root = nircam.name.replace("_uncal.fits", "")
    assert f"{root}_rate.fits" in names and f"{root}_cal.fits" in names
    hdr = fits.getheader(tmp_path / "out" / f"{root}_cal.fits")
    assert hdr["S_FLAT"] == "COMPLETE" and hdr["S_PHOTOM"] == "COMPLETE" and hdr["WC_RECIP"] == "calwebb_image2"


def test_datamodel_path_table_matches_crds_translation():
    """Our FITS keyword -> data-model path table (the fast CRDS path) agrees with crds' own."""
    from crds.jwst.locate import cached_dm_find_fits_keyword

    from runner.crds_refs import DATAMODEL_PATHS

    for keyword, path in DATAMODEL_PATHS.items():
        assert [p.upper() for p in cached_dm_find_fits_keyword(keyword)] == [path], keyword


def test_fast_selection_header_picks_same_references(crds_env, nircam):
    from runner import crds_refs

    meta = Product.open(nircam).meta
    types = ["gain", "readnoise", "superbias", "dark", "mask", "saturation", "linearity"]
    fast = crds_refs.best_references(meta, types, "jwst_0001.pmap")
    assert set(crds_refs.selection_header(meta, "jwst_0001.pmap")) <= set(crds_refs.DATAMODEL_PATHS.values())
    import crds

    slow = crds.getreferences(crds_refs.crds_header(meta), reftypes=types, context="jwst_0001.pmap", observatory="jwst")
    assert fast == slow


def test_crds_bestrefs_command_line_resolves_simulated_exposure(crds_env, nircam):
    """The crds client's own command line selects our references offline."""
    import subprocess
    import sys

    env = dict(os.environ, CRDS_PATH=str(crds_env))
    env.pop("CRDS_SERVER_URL", None)
    out = subprocess.run([sys.executable, "-m", "crds.bestrefs", "--files", str(nircam), "--new-context",
                          "jwst_0002.pmap", "--types", "gain", "superbias", "--print-new-references"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(str(nircam))]
    from runner import crds_refs

    ours = crds_refs.best_references(Product.open(nircam).meta, ["gain", "superbias"], "jwst_0002.pmap")
    for reftype, path in ours.items():
        assert any(f" {reftype} " in ln and ln.endswith(Path(path).name) for ln in lines), out.stdout[-500:]
