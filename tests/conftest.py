"""Shared fixtures: simulated exposures and a local CRDS cache, built once per session."""
import os

import pytest


def _reset_crds():
    import crds.core.config
    import crds.core.utils

    crds.core.config.CRDS_REF_SUBDIR_MODE = "None"
    crds.core.utils.clear_function_caches()


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory):
    return tmp_path_factory.mktemp("sim")


@pytest.fixture(scope="session")
def tiny_sets(sim_root):
    """Tiny NIRCam imaging and MIRI imaging exposures with their truth."""
    from simulator import modes

    return {name: modes.simulate(name, sim_root / name, size="tiny", seed=1)
            for name in ("nircam_image", "miri_image", "nircam_tso_image")}


@pytest.fixture(scope="session")
def crds_cache(sim_root, tiny_sets):
    """A local CRDS cache for the tiny sets; CRDS_PATH points at it for the whole session."""
    from simulator import crds_cache as cache, modes

    root = cache.build_crds_cache(sim_root / "crds_cache", modes.configurations(list(tiny_sets.values())))
    old = {k: os.environ.get(k) for k in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT")}
    os.environ["CRDS_PATH"] = str(root)
    os.environ.pop("CRDS_SERVER_URL", None)
    os.environ.pop("CRDS_CONTEXT", None)
    _reset_crds()
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _reset_crds()
