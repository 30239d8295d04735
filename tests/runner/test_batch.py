"""Batch runs over many exposures: executors (dask.distributed, processes, local), resume, manifest.

The dask tests start a real ``distributed.LocalCluster`` of 2 worker processes (one thread each).
"""
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from pydantic import Field

from runner import registry
from runner.cli import main
from runner.execute import run_recipe
from runner.executors import run_batch
from runner.manifest import manifest_path, read_manifest, resume_decision
from runner.product import Product
from runner.recipe import Recipe
from runner.step import Step, StepParameters

distributed = pytest.importorskip("distributed")

CTX = "jwst_0001.pmap"


# -- test-only steps (importable by workers as tests.runner.test_batch:...) -------------------
class SleepParameters(StepParameters):
    """Parameters of batch_sleep."""

    marker_dir: str = Field("", description="Folder where the first task writes '<pid> <file>' before sleeping.")
    seconds: float = Field(0.0, ge=0, description="Sleep of the first task (s).")


class SleepStep(Step):
    """Test step: the first exposure to arrive announces its worker's pid, then sleeps."""

    alias = "batch_sleep"
    Parameters = SleepParameters

    def process(self, product):
        marker = Path(self.params.marker_dir)
        if self.params.seconds and marker.is_dir() and not any(marker.iterdir()):
            tmp = marker.parent / f".{os.getpid()}.tmp"
            tmp.write_text(f"{os.getpid()} {product.filename}")
            os.replace(tmp, marker / "started")
            time.sleep(self.params.seconds)
        return product


class StackStep(Step):
    """Test stage-3 step: the mean SCI of the association's science members."""

    alias = "batch_stack"

    def process(self, product_set):
        scis = [p.data.astype(np.float64) for p in product_set.iter_products()]
        stack = np.mean(scis, axis=0).astype(np.float32)
        out = Product("image", meta=product_set.meta.copy(), filename=f"{product_set.name}.fits")
        out.data = stack
        out.meta["NMEMBERS"] = len(scis)
        return out


@pytest.fixture(scope="module", autouse=True)
def test_steps():
    for cls in (SleepStep, StackStep):
        registry.register(cls)
    yield
    for cls in (SleepStep, StackStep):
        registry.unregister(cls.alias)


@pytest.fixture
def crds_env(crds_cache, monkeypatch):
    import crds.core.config
    import crds.core.utils

    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    crds.core.config.CRDS_REF_SUBDIR_MODE = "None"
    crds.core.utils.clear_function_caches()
    return crds_cache


@pytest.fixture(scope="module")
def cluster(crds_cache):
    """A real LocalCluster: 2 worker processes, 1 thread each, started after CRDS_PATH is set."""
    from distributed import LocalCluster

    import logging

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture
def exposures(tiny_sets):
    return [Path(p) for name in ("nircam_image", "miri_image") for p in tiny_sets[name].exposures]


def _arrays(path):
    with fits.open(path) as hdul:
        return {e: hdul[e].data.copy() for e in ("SCI", "ERR", "DQ") if e in hdul}


def _assert_same_products(dir_a, dir_b):
    a = sorted(p.name for p in Path(dir_a).glob("*.fits"))
    b = sorted(p.name for p in Path(dir_b).glob("*.fits"))
    assert a and a == b
    for name in a:
        x, y = _arrays(Path(dir_a) / name), _arrays(Path(dir_b) / name)
        assert set(x) == set(y) and {"SCI", "DQ"} <= set(x), name
        for ext in x:
            assert x[ext].dtype == y[ext].dtype and x[ext].shape == y[ext].shape, (name, ext)
            assert x[ext].tobytes() == y[ext].tobytes(), f"{name} {ext} differs"
        assert fits.getval(Path(dir_a) / name, "WC_CHASH") == fits.getval(Path(dir_b) / name, "WC_CHASH")


# -- dask: identical to in-process ------------------------------------------------------------
def test_dask_batch_bit_identical_to_in_process(crds_env, cluster, exposures, tmp_path):
    recipe = Recipe.load("calwebb_detector1")
    ref = run_recipe(recipe, exposures, output_dir=tmp_path / "local", crds_context=CTX)
    assert [r.status for r in ref] == ["done"] * len(exposures)
    results = run_batch(recipe, exposures, executor="dask", scheduler=cluster.scheduler_address,
                        output_dir=tmp_path / "dask", crds_context=CTX)
    assert [r.status for r in results] == ["done"] * len(exposures)
    assert all(r.product is None for r in results)
    _assert_same_products(tmp_path / "local", tmp_path / "dask")

    doc = json.loads(manifest_path(tmp_path / "dask", recipe).read_text())
    assert doc["finished"] and doc["summary"] == {"done": len(exposures), "failed": 0, "skipped": 0}
    assert doc["executor"]["name"] == "dask" and doc["executor"]["workers"] == 2
    assert doc["recipe"]["name"] == "calwebb_detector1" and len(doc["recipe"]["hash"]) == 64
    assert doc["recipe"]["resolved"]["steps"][-1] == "gain_scale"
    assert doc["crds"]["contexts"] == [CTX]
    assert set(doc["lock"]["inputs"]) == {str(p) for p in exposures}
    workers = set()
    for item in doc["items"]:
        rate = Path(item["main_product"])
        assert rate.is_file() and item["status"] == "done" and item["seconds"] > 0 and item["peak_rss_mb"] > 50
        assert fits.getval(rate, "WC_CHASH") == item["config_hash"] == doc["lock"]["inputs"][item["label"]]["config_hash"]
        assert any(p.endswith("_rateints.fits") for p in item["products"])
        assert {s["name"] for s in item["steps"]} >= {"jump", "ramp_fit"}
        workers.add(item["worker"])
    assert len(workers) == 2, "both workers should have taken exposures"
    lock = doc["lock"]["inputs"][str(exposures[0])]
    assert lock["references"]["ramp_fit"]["gain"]["sha256"]


# -- a corrupt input fails alone; resume; changed configuration is redone --------------------
def test_corrupt_inputs_fail_alone_and_rerun_resumes(crds_env, cluster, exposures, tmp_path, capsys, caplog):
    good = exposures[:3]
    truncated = tmp_path / "in" / "jw09999001001_01101_00001_nrca1_uncal.fits"
    truncated.parent.mkdir()
    data = good[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])     # header fine, data cut: fails in the worker
    garbage = tmp_path / "in" / "jw09999001001_01101_00002_nrca1_uncal.fits"
    garbage.write_bytes(b"not a fits file at all" * 100)
    out = tmp_path / "out"
    args = ["run", "calwebb_detector1", *map(str, good), str(truncated), str(garbage), "-o", str(out),
            "--crds-context", CTX, "--scheduler", cluster.scheduler_address]
    assert main(args) == 1
    text = capsys.readouterr()
    table = text.out[text.out.index("status "):]
    assert "5 items: 3 done, 2 failed, 0 skipped" in table
    assert f"failed          -  {truncated}" in table and "truncated or corrupt" in table
    assert f"{garbage}: not a FITS file" in table
    assert "2 of 5 inputs failed" in text.err
    for p in good:
        assert (out / p.name.replace("_uncal", "_rate")).is_file()
    doc = read_manifest(manifest_path(out, Recipe.load("calwebb_detector1")))
    status = {i["label"]: i["status"] for i in doc["items"]}
    assert status[str(truncated)] == status[str(garbage)] == "failed"

    # re-run after a "crash": one product removed; the others are up to date and skipped
    (out / good[1].name.replace("_uncal", "_rate")).unlink()
    before = (out / good[0].name.replace("_uncal", "_rate")).stat().st_mtime_ns
    assert main(args) == 1
    table = capsys.readouterr().out
    assert "5 items: 1 done, 2 failed, 2 skipped" in table
    assert f"skipped         -  {good[0]}" in table and "done" in table
    assert (out / good[0].name.replace("_uncal", "_rate")).stat().st_mtime_ns == before
    assert (out / good[1].name.replace("_uncal", "_rate")).is_file()

    # another configuration: nothing reused silently; redone, and the log says why
    caplog.clear()
    changed = ["run", "calwebb_detector1", *map(str, good), "-o", str(out), "--crds-context", CTX,
               "--set", "jump.rejection_threshold=5.5"]
    assert main(changed) == 0
    assert "3 items: 3 done, 0 failed, 0 skipped" in capsys.readouterr().out
    redone = [r.getMessage() for r in caplog.records if "different configuration" in r.getMessage()]
    assert len(redone) == 3
    new_hash = fits.getval(out / good[0].name.replace("_uncal", "_rate"), "WC_CHASH")
    assert new_hash != doc["lock"]["inputs"][str(good[0])]["config_hash"]


def test_resume_rule(tmp_path):
    path = tmp_path / "x_rate.fits"
    assert resume_decision("a" * 64, path) == ("run", None)
    fits.PrimaryHDU(header=fits.Header([("WC_CHASH", "a" * 64)])).writeto(path)
    assert resume_decision("a" * 64, path)[0] == "skip"
    action, why = resume_decision("b" * 64, path)
    assert action == "redo" and "different configuration" in why
    assert resume_decision("a" * 64, path, {"products": [str(tmp_path / "gone.fits")]})[0] == "redo"
    path.write_bytes(b"SIMPLE  =  truncated")
    assert resume_decision("a" * 64, path)[0] == "redo"


# -- stage 3 after its members: a chain on the in-process executor ----------------------------
def test_chain_stage3_runs_per_association_after_members(crds_env, tiny_sets, tmp_path):
    (tmp_path / "s1.yaml").write_text("pipeline: batch_s1\nstage: 1\noutput_suffix: rate\nsteps: [dq_init, batch_sleep]\n")
    (tmp_path / "s3.yaml").write_text("pipeline: batch_s3\nstage: 3\noutput_suffix: stack\nsteps: [batch_stack]\n")
    (tmp_path / "chain.yaml").write_text("chain:\n  - recipe: s1.yaml\n  - recipe: s3.yaml\n")
    recipe = Recipe.load(tmp_path / "chain.yaml")
    inputs = [Path(p) for p in tiny_sets["nircam_image"].exposures]
    results = run_batch(recipe, inputs, executor="local", output_dir=tmp_path / "out", crds_context=CTX)
    assert [r.status for r in results] == ["done"] * (len(inputs) + 1)
    stack = Path(results[-1].main_output)
    assert stack.name.endswith("_batch_s3_stack.fits") and fits.getval(stack, "NMEMBERS") == len(inputs)
    members = [fits.getdata(r.main_output, "SCI").astype(np.float64) for r in results[:-1]]
    np.testing.assert_allclose(fits.getdata(stack, "SCI"), np.mean(members, axis=0), rtol=1e-6)
    again = run_batch(recipe, inputs, executor="local", output_dir=tmp_path / "out", crds_context=CTX)
    assert [r.status for r in again] == ["skipped"] * (len(inputs) + 1)


# -- a worker killed mid-batch ------------------------------------------------------------------
def test_worker_killed_mid_batch_is_survived(crds_env, cluster, exposures, tmp_path):
    recipe = Recipe.from_dict({"pipeline": "batch_kill", "stage": 1, "output_suffix": "slept",
                               "steps": ["dq_init", "batch_sleep"]}, name="batch_kill")
    marker = tmp_path / "marker"
    marker.mkdir()
    overrides = {"batch_sleep": {"marker_dir": str(marker), "seconds": 20.0}}
    box = {}

    def batch():
        box["results"] = run_batch(recipe, exposures, executor="dask", scheduler=cluster.scheduler_address,
                                   overrides=overrides, output_dir=tmp_path / "out", crds_context=CTX)

    thread = threading.Thread(target=batch)
    thread.start()
    deadline = time.monotonic() + 30
    while not (marker / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (marker / "started").exists(), "no task started"
    pid, filename = (marker / "started").read_text().split()
    os.kill(int(pid), signal.SIGKILL)              # mid-task: it sleeps for 20 s
    t_kill = time.monotonic()
    thread.join(60)
    assert not thread.is_alive()
    assert time.monotonic() - t_kill < 20, "the killed task was not rerun elsewhere"
    results = box["results"]
    assert [r.status for r in results] == ["done"] * len(exposures)
    doc = read_manifest(manifest_path(tmp_path / "out", recipe))
    killed = [i for i in doc["items"] if Path(i["label"]).name == filename]
    assert len(killed) == 1 and killed[0]["status"] == "done"
    assert not killed[0]["worker"].endswith(f":{pid}")
    for p in exposures:
        assert (tmp_path / "out" / p.name.replace("_uncal", "_slept")).is_file()


# -- the standard-library process pool ----------------------------------------------------------
@pytest.mark.slow
def test_processes_executor_identical(crds_env, exposures, tmp_path):
    recipe = Recipe.load("calwebb_detector1")
    run_recipe(recipe, exposures, output_dir=tmp_path / "local", crds_context=CTX)
    results = run_batch(recipe, exposures, executor="processes", workers=2, output_dir=tmp_path / "proc",
                        crds_context=CTX)
    assert [r.status for r in results] == ["done"] * len(exposures)
    _assert_same_products(tmp_path / "local", tmp_path / "proc")
