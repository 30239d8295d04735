"""calwebb_tso3 steps on association members stream them: same answers as in memory, bounded memory.

outlier_detection flags a member's working copy in blocks of rows; tso_photometry reads blocks
of integrations for the centroids and only the aperture cutout for the photometry.
"""
import hashlib
import tracemalloc

import numpy as np
import pytest
from astropy.io import fits

from runner import Product
from runner.association import Member
from runner.product_set import ProductSet
from steps.outlier_detection.step import TSO_BYTES_PER_ELEMENT, OutlierDetectionStep
from steps.tso_photometry import step as tso_step
from steps.tso_photometry.step import TSOPhotometryStep

from .test_outlier_detection import make_tso_cube


def _with_photometry_meta(cube):
    cube.ext_headers["SCI"]["BUNIT"] = "MJy/sr"
    cube.ext_headers["SCI"]["XREF_SCI"] = 12.0
    cube.ext_headers["SCI"]["YREF_SCI"] = 13.0
    cube.meta.update({"PIXAR_SR": 2.0e-14, "EXPSTART": 60000.0, "EFFINTTM": 10.0, "INTSTART": 1})
    cube.arrays["VAR_POISSON"] = (cube.err.astype(np.float32) ** 2) * np.float32(0.8)
    cube.arrays["VAR_RNOISE"] = (cube.err.astype(np.float32) ** 2) * np.float32(0.2)
    return cube


def _member_set(tmp_path, cube):
    path = tmp_path / cube.filename
    cube.save(path)
    pset = ProductSet("jw01000-o002_t001_nircam_f210m", [Member(path, "science")])
    pset.working_dir = tmp_path / "work"
    return pset, path


def test_outlier_rows_blocks_equal_in_memory(tmp_path):
    cube, hit, _star, _transit = make_tso_cube(nints=120, shape=(20, 18), seed=8)
    pset, path = _member_set(tmp_path, cube)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    step = OutlierDetectionStep()
    in_memory = Product.open(path)
    step.flag_cube(in_memory)
    lazy = pset.open(0, lazy=True)
    work = pset.working_copy(0)
    per_row = 120 * 18 * TSO_BYTES_PER_ELEMENT
    added = step.flag_cube_file(work, lazy, max_block_bytes=3 * per_row)   # 7 blocks of <= 3 rows
    assert not lazy.loaded
    got = fits.getdata(work, "DQ")
    np.testing.assert_array_equal(got, in_memory.dq)
    assert added == int(np.count_nonzero(in_memory.dq & 1))
    assert (got[hit] & 16).mean() > 0.9                   # the injected outliers are found
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before   # input never modified


def test_outlier_set_emits_crfints_with_status(tmp_path):
    cube, _hit, _star, _transit = make_tso_cube(nints=60, shape=(12, 12), seed=9)
    pset, path = _member_set(tmp_path, cube)
    step = OutlierDetectionStep()
    out = step.process(pset)
    (sfx, obj, root), = step._extra_outputs
    assert sfx == "crfints" and root == "jw01000002001_01101_00001_nrca3"
    obj.meta["CAL_VER"] = "stamped"
    saved = obj.save(tmp_path / "out" / "x_crfints.fits")
    with fits.open(saved) as h:
        h.verify("exception")
        assert h[0].header["S_OUTLIR"] == "COMPLETE" and h[0].header["CAL_VER"] == "stamped"
        assert h[0].header["FILENAME"] == "x_crfints.fits"
        np.testing.assert_array_equal(h["SCI"].data, cube.data)
        assert np.count_nonzero(h["DQ"].data & 16) > 0
    assert out.members[0].path != path                      # the set now points at the copy


@pytest.mark.parametrize("moving", [False, True])
def test_photometry_of_member_equals_in_memory(tmp_path, moving):
    cube, _hit, _star, _transit = make_tso_cube(nints=80, shape=(24, 24), seed=4)
    cube = _with_photometry_meta(cube)
    cube.dq[5, 12, 11] = 1                                   # a replaced aperture pixel
    pset, path = _member_set(tmp_path, cube)
    params = dict(centroid_source=True, moving_centroid=moving, search_box_width=15, fit_box_width=7,
                  save_catalog=False)
    mem = TSOPhotometryStep(**params)
    mem.process(Product.open(path))
    disk = TSOPhotometryStep(**params)
    disk.process(pset)
    for name in ("aperture_sum", "aperture_sum_err", "annulus_mean", "net_aperture_sum",
                 "net_aperture_sum_err", "xcenter", "ycenter", "centroid_x"):
        np.testing.assert_allclose(disk.table[name].value, mem.table[name].value, rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(disk.table["flag"], mem.table["flag"])
    assert disk.table["flag"][5] & 1


def test_photometry_memory_does_not_hold_the_cube(tmp_path, monkeypatch):
    """A 25 MiB SCI member is measured with a few MiB of numpy allocations (blocks + the cutout)."""
    rng = np.random.default_rng(1)
    nints, ny, nx = 300, 160, 128
    yy, xx = np.mgrid[:ny, :nx]
    star = 4000.0 * np.exp(-0.5 * ((xx - 30.2) ** 2 + (yy - 50.7) ** 2) / 1.4 ** 2) + 20.0
    data = (star[None] + rng.normal(0, 3.0, (nints, ny, nx))).astype(np.float32)
    meta = fits.Header()
    meta.update({"EXP_TYPE": "NRC_TSIMAGE", "TSOVISIT": True, "INSTRUME": "NIRCAM", "PIXAR_SR": 2e-14,
                 "EXPSTART": 60000.0, "EFFINTTM": 10.0, "INTSTART": 1})
    sci = fits.Header()
    sci.update({"BUNIT": "MJy/sr", "XREF_SCI": 31.0, "YREF_SCI": 52.0})
    var = np.full(data.shape, 9.0, np.float32)
    cube = Product("cube", meta, {"SCI": data, "ERR": np.sqrt(var), "DQ": np.zeros(data.shape, np.uint32),
                                  "VAR_POISSON": var * 0.5, "VAR_RNOISE": var * 0.5}, {}, {"SCI": sci},
                   filename="jw01000002001_01101_00001_nrca3_calints.fits")
    pset, path = _member_set(tmp_path, cube)
    cube_bytes = data.nbytes
    del cube, data, var
    monkeypatch.setattr(tso_step, "_BLOCK_BYTES", 2 << 20)
    step = TSOPhotometryStep(centroid_source=True, save_catalog=False)
    tracemalloc.start()
    try:
        step.process(pset)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"SCI {cube_bytes / 2**20:.1f} MiB, peak numpy/python allocations {peak / 2**20:.1f} MiB")
    assert peak < 0.3 * cube_bytes, (peak, cube_bytes)
    assert len(step.table) == nints
    np.testing.assert_allclose(np.median(step.table["xcenter"].value), 30.2, atol=0.05)
