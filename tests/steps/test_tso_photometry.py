"""tso_photometry on small synthetic cubes with analytic answers."""
import logging

import numpy as np
import pytest
from astropy.io import fits

from runner import Product
from runner.errors import InputError
from steps.tso_photometry.aperture_photometry import (FLAG_AREA_SCALED, FLAG_NO_DATA, FLAG_REPLACED,
                                                      aperture_photometry, circle_weights)
from steps.tso_photometry.step import PhotometryCatalog, TSOPhotometryStep

NINTS, NY, NX = 6, 32, 32
X0, Y0 = 15.0, 16.0          # 0-based target position (pixel centre)
FLUX = 1000.0                 # source flux (data unit * pixel)
BKG = 2.0                     # background per pixel
VAR = 0.25                    # variance per pixel


def _cube(bunit="DN/s", int_times=True, dq=None, extra_meta=None):
    """A cube whose source sits in a 3x3 block centred on (X0, Y0) plus a flat background."""
    data = np.full((NINTS, NY, NX), BKG, np.float32)
    data[:, int(Y0) - 1:int(Y0) + 2, int(X0) - 1:int(X0) + 2] += FLUX / 9.0
    meta = fits.Header()
    meta.update({"INSTRUME": "NIRCAM", "DETECTOR": "NRCA3", "FILTER": "F210M", "PUPIL": "CLEAR",
                 "SUBARRAY": "SUB32", "TARGNAME": "SYNTH", "EXPSTART": 60000.0, "EFFINTTM": 10.0,
                 "INTSTART": 1, "PIXAR_SR": 2.0e-14})
    meta.update(extra_meta or {})
    sci = fits.Header()
    sci["BUNIT"] = bunit
    sci["XREF_SCI"] = X0 + 1
    sci["YREF_SCI"] = Y0 + 1
    arrays = {"SCI": data, "ERR": np.full(data.shape, np.sqrt(VAR), np.float32),
              "DQ": np.zeros(data.shape, np.uint32) if dq is None else dq,
              "VAR_POISSON": np.full(data.shape, VAR / 2, np.float32),
              "VAR_RNOISE": np.full(data.shape, VAR / 2, np.float32)}
    tables = {}
    if int_times:
        tab = np.zeros(NINTS, dtype=[("integration_number", "i4"), ("int_mid_MJD_UTC", "f8"),
                                     ("int_mid_BJD_TDB", "f8")])
        tab["integration_number"] = np.arange(1, NINTS + 1)
        tab["int_mid_MJD_UTC"] = 60000.0 + np.arange(NINTS) * 0.001
        tab["int_mid_BJD_TDB"] = tab["int_mid_MJD_UTC"] + 0.004
        tables["INT_TIMES"] = tab
    return Product("cube", meta, arrays, tables, {"SCI": sci}, filename="jw_synth_calints.fits")


def _run(cube, **params):
    step = TSOPhotometryStep(centroid_source=False, **params)
    out = step.process(cube)
    assert out is cube
    return step.table, step


def test_circle_weights_area_is_exact():
    w = circle_weights((20, 20), 9.3, 10.6, 3.0)
    assert w.sum() == pytest.approx(np.pi * 9.0, rel=1e-12)
    assert w.max() == 1.0 and w.min() == 0.0


def test_known_flux_background_and_errors():
    table, step = _run(_cube())
    area = np.pi * 3.0 ** 2
    area_an = np.pi * (5.0 ** 2 - 4.0 ** 2)
    np.testing.assert_allclose(table["aperture_sum"].value, FLUX + BKG * area, rtol=1e-6)
    np.testing.assert_allclose(table["annulus_mean"].value, BKG, rtol=1e-6)
    np.testing.assert_allclose(table["annulus_sum"].value, BKG * area_an, rtol=1e-6)
    np.testing.assert_allclose(table["aperture_bkg"].value, BKG * area, rtol=1e-6)
    np.testing.assert_allclose(table["net_aperture_sum"].value, FLUX, rtol=1e-6)
    w = circle_weights((NY, NX), X0, Y0, 3.0)
    np.testing.assert_allclose(table["aperture_sum_err"].value, np.sqrt(VAR * (w ** 2).sum()), rtol=1e-6)
    wb = circle_weights((NY, NX), X0, Y0, 5.0) - circle_weights((NY, NX), X0, Y0, 4.0)
    bkg_err = area * np.sqrt(VAR * (wb ** 2).sum()) / wb.sum()
    np.testing.assert_allclose(table["aperture_bkg_err"].value, bkg_err, rtol=1e-6)
    np.testing.assert_allclose(table["net_aperture_sum_err"].value,
                               np.hypot(np.sqrt(VAR * (w ** 2).sum()), bkg_err), rtol=1e-6)
    assert str(table["net_aperture_sum"].unit) == "DN / s"      # no GAIN reference: units kept
    assert (table["flag"] == 0).all()
    np.testing.assert_allclose(table["xcenter"].value, X0)
    np.testing.assert_allclose(table["ycenter"].value, Y0)
    for key in ("instrument", "detector", "filter", "subarray", "target", "apertures"):
        assert key in table.meta
    assert step._extra_outputs[0][0] == "phot"


def test_times_from_int_times():
    cube = _cube()
    table, _ = _run(cube)
    np.testing.assert_array_equal(table["MJD"], cube.tables["INT_TIMES"]["int_mid_MJD_UTC"])
    np.testing.assert_array_equal(table["BJD_TDB"], cube.tables["INT_TIMES"]["int_mid_BJD_TDB"])


def test_times_without_int_times_warn(caplog):
    with caplog.at_level(logging.WARNING):
        table, _ = _run(_cube(int_times=False))
    assert "INT_TIMES" in caplog.text
    np.testing.assert_allclose(table["MJD"], 60000.0 + (np.arange(NINTS) + 0.5) * 10.0 / 86400.0)
    assert np.isnan(table["BJD_TDB"]).all()


def test_mjy_per_sr_becomes_jy():
    table, _ = _run(_cube(bunit="MJy/sr"))
    assert str(table["net_aperture_sum"].unit) == "Jy"
    np.testing.assert_allclose(table["net_aperture_sum"].value, FLUX * 1e6 * 2.0e-14, rtol=1e-5)


def test_pixel_flagged_in_one_integration_is_replaced():
    dq = np.zeros((NINTS, NY, NX), np.uint32)
    dq[2, int(Y0), int(X0)] = 1 | 16          # DO_NOT_USE + OUTLIER on the source
    cube = _cube(dq=dq)
    cube.data[2, int(Y0), int(X0)] = 1e6       # the outlier value must not leak in
    table, _ = _run(cube)
    np.testing.assert_allclose(table["net_aperture_sum"].value, FLUX, rtol=1e-6)
    assert table["flag"][2] & FLAG_REPLACED
    assert not (table["flag"][[0, 1, 3, 4, 5]] & FLAG_REPLACED).any()


def test_nan_pixel_is_replaced_too():
    cube = _cube()
    cube.data[4, int(Y0) + 1, int(X0)] = np.nan
    table, _ = _run(cube)
    np.testing.assert_allclose(table["net_aperture_sum"].value, FLUX, rtol=1e-6)
    assert table["flag"][4] & FLAG_REPLACED


def test_pixel_bad_in_every_integration_scales_by_area():
    dq = np.zeros((NINTS, NY, NX), np.uint32)
    yb, xb = int(Y0) + 2, int(X0)              # background pixel fully inside r=3
    dq[:, yb, xb] = 1
    table, _ = _run(_cube(dq=dq))
    area = np.pi * 9.0
    expected = (FLUX + BKG * (area - 1.0)) * area / (area - 1.0) - BKG * area
    np.testing.assert_allclose(table["net_aperture_sum"].value, expected, rtol=1e-6)
    assert (table["flag"] & FLAG_AREA_SCALED).all()


def test_fully_flagged_integration_gives_nan_row_not_crash():
    dq = np.zeros((NINTS, NY, NX), np.uint32)
    dq[3] = 1
    table, _ = _run(_cube(dq=dq))
    assert np.isnan(table["net_aperture_sum"][3].value)
    assert table["flag"][3] & FLAG_NO_DATA
    good = np.delete(np.arange(NINTS), 3)
    np.testing.assert_allclose(table["net_aperture_sum"].value[good], FLUX, rtol=1e-6)


def test_target_outside_subarray_names_file():
    cube = _cube()
    cube.ext_headers["SCI"]["XREF_SCI"] = NX + 40.0
    with pytest.raises(InputError, match="jw_synth_calints.fits.*outside"):
        _run(cube)


def test_centroid_finds_offset_source():
    yy, xx = np.mgrid[:NY, :NX]
    xs, ys, sig = X0 + 0.7, Y0 - 0.4, 1.2
    star = FLUX * np.exp(-((xx - xs) ** 2 + (yy - ys) ** 2) / (2 * sig ** 2)) / (2 * np.pi * sig ** 2)
    cube = _cube()
    cube.data[:] = (BKG + star).astype(np.float32)
    step = TSOPhotometryStep(centroid_source=True)
    step.process(cube)
    np.testing.assert_allclose(step.table["xcenter"].value, xs, atol=0.02)
    np.testing.assert_allclose(step.table["ycenter"].value, ys, atol=0.02)


def test_moving_centroid_follows_the_source():
    yy, xx = np.mgrid[:NY, :NX]
    cube = _cube()
    xs = X0 + np.linspace(-1.0, 1.0, NINTS)
    for k in range(NINTS):
        star = FLUX * np.exp(-((xx - xs[k]) ** 2 + (yy - Y0) ** 2) / (2 * 1.2 ** 2)) / (2 * np.pi * 1.2 ** 2)
        cube.data[k] = BKG + star
    step = TSOPhotometryStep(centroid_source=True, moving_centroid=True)
    step.process(cube)
    np.testing.assert_allclose(step.table["xcenter"].value, xs, atol=0.03)
    # same fraction of the flux in every integration once the aperture follows the source
    net = step.table["net_aperture_sum"].value
    assert np.ptp(net) / net.mean() < 2e-3


def test_vectorised_matches_photutils():
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture

    rng = np.random.default_rng(3)
    data = rng.normal(5.0, 1.0, (4, 24, 24))
    var = np.full(data.shape, 1.0)
    res = aperture_photometry(data, var, np.zeros(data.shape, bool), 11.3, 12.6, 3.0, 4.0, 6.0)
    for k in range(4):
        ap = ApertureStats(data[k], CircularAperture((11.3, 12.6), 3.0))
        an = ApertureStats(data[k], CircularAnnulus((11.3, 12.6), 4.0, 6.0))
        assert res["aperture_sum"][k] == pytest.approx(ap.sum, rel=1e-10)
        assert res["annulus_mean"][k] * an.sum_aper_area.value == pytest.approx(an.sum, rel=1e-10)


def test_catalog_writes_ecsv(tmp_path):
    from astropy.table import QTable

    table, _ = _run(_cube())
    cat = PhotometryCatalog(table)
    cat.meta["CAL_VER"] = "x"
    cat.save(tmp_path / "a_phot.ecsv")
    back = QTable.read(tmp_path / "a_phot.ecsv")
    np.testing.assert_allclose(back["net_aperture_sum"].value, FLUX, rtol=1e-6)
    assert back.meta["provenance"]["CAL_VER"] == "x"
