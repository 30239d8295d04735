"""Time-series imaging, uncal -> light curve: calwebb_detector1 -> calwebb_image2 (tso) -> calwebb_tso3.

Truth comes from the simulator's ``nircam_tso_image`` mode (a transit of known depth, known
rates, gain, read noise and readout). The checks:

* ``MJD``/``BJD_TDB`` equal the INT_TIMES mid-times;
* the transit depth from a fit of the simulator's light-curve shape (free baseline and depth)
  agrees with the truth within 3 sigma;
* (slow, 2000 integrations) the out-of-transit scatter agrees within 10 % with the photon +
  read noise expected from the MULTIACCUM variance formula (about 700 points: the standard
  error of that ratio is 2.7 %, so the 10 % band is a 3.7-sigma test), as does the scatter
  about the fitted curve over all integrations, and the reported errors describe the scatter
  (std of normalised residuals 0.9 .. 1.15).
"""
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable

CONTEXT = "jwst_0001.pmap"


def run_chain(sset, out):
    """Run the three recipes on a simulated TSO imaging set; return (phot path, calints path)."""
    from runner.recipe import Recipe

    out = Path(out)
    d1 = Recipe.load("calwebb_detector1").run(sset.exposures, output_dir=out, crds_context=CONTEXT)
    rateints = [o for o in d1[0].outputs if o.endswith("_rateints.fits")]
    assert rateints, d1[0].outputs
    i2 = Recipe.load("calwebb_image2").run(rateints, output_dir=out, crds_context=CONTEXT)
    calints = i2[0].main_output
    assert calints.endswith("_calints.fits")
    asn = [a for a in sset.associations if "_tso3_" in Path(a).name][0]
    local = out / Path(asn).name
    shutil.copy(asn, local)
    t3 = Recipe.load("calwebb_tso3").run([local], output_dir=out, crds_context=CONTEXT)
    phot = [o for o in t3[0].outputs if o.endswith("_phot.ecsv")]
    assert len(phot) == 1, t3[0].outputs
    return phot[0], calints


def fit_depth(table, truth):
    """Weighted fit ``net = B * (1 - depth * shape)``, shape = the true transit normalised to 1.

    Returns depth, its 1-sigma error (reported errors, scaled by sqrt(reduced chi2) when > 1),
    the model and the normalised residuals.
    """
    lc = np.asarray(truth["scene"]["relative_flux"])
    shape = (1.0 - lc) / (1.0 - lc).max()
    f = table["net_aperture_sum"].value
    e = table["net_aperture_sum_err"].value
    a = np.column_stack([np.ones_like(shape), -shape]) / e[:, None]
    coef, *_ = np.linalg.lstsq(a, f / e, rcond=None)
    base, c = coef
    cov = np.linalg.inv(a.T @ a)
    model = base - c * shape
    resid = (f - model) / e
    chi2 = max(1.0, float((resid ** 2).sum() / (len(f) - 2)))
    depth = c / base
    jac = np.array([-c / base ** 2, 1.0 / base])
    err = float(np.sqrt(jac @ cov @ jac * chi2))
    return depth, err, model, resid


def expected_relative_sigma(sset, table, rows=None):
    """Photon + read noise (relative) of the net aperture flux, per integration.

    Per pixel, for ``n`` groups of one frame (RAPID) spaced ``tgroup``: slope variance
    ``6 (n^2 + 1) / (5 n (n^2 - 1)) f / tgroup + 12 s^2 / (tgroup^2 n (n^2 - 1))`` (e/s)^2 with
    ``f`` the true rate plus dark (e/s) and ``s = gain * readnoise_cds / sqrt(2)`` the per-frame
    read noise (e). The net flux's variance adds the aperture's ``sum w^2 var`` and the
    background's ``(A_ap / sum w_an)^2 sum w_an^2 var``.
    """
    from simulator.detectors import detector_properties, get_subarray
    from simulator.ramps import RampTruth
    from steps.tso_photometry.aperture_photometry import annulus_weights, circle_weights

    hdr = fits.getheader(sset.exposures[0])
    assert hdr["READPATT"] == "RAPID" and hdr["NFRAMES"] == 1
    det = hdr["DETECTOR"]
    sub = get_subarray(det, hdr["SUBARRAY"])
    props = detector_properties(det)
    gain = sub.cut(props.gain)
    gain = np.where(np.isfinite(gain), gain, np.nanmedian(gain))
    rn = sub.cut(props.readnoise_cds)
    dark = sub.cut(props.dark_rate)
    n, tg = int(hdr["NGROUPS"]), float(hdr["TGROUP"])
    rate = RampTruth.load(sset.ramp_truths[0]).rate_dn        # (nints, ny, nx) DN/s
    fe = (rate + dark) * gain
    var = (6.0 * (n ** 2 + 1) / (5.0 * n * (n ** 2 - 1)) * fe / tg
           + 12.0 * (gain * rn / np.sqrt(2.0)) ** 2 / (tg ** 2 * n * (n ** 2 - 1)))
    r, ri, ro = 3.0, 4.0, 5.0
    xc, yc = float(table["xcenter"][0].value), float(table["ycenter"][0].value)
    wa = circle_weights(rate.shape[1:], xc, yc, r)
    wb = annulus_weights(rate.shape[1:], xc, yc, ri, ro)
    net = (wa * fe).sum(axis=(1, 2)) - wa.sum() * (wb * fe).sum(axis=(1, 2)) / wb.sum()
    vnet = (wa ** 2 * var).sum(axis=(1, 2)) + wa.sum() ** 2 * (wb ** 2 * var).sum(axis=(1, 2)) / wb.sum() ** 2
    return np.sqrt(vnet) / net


@contextmanager
def tso_size(nints, ngroups=3, subarray="SUB64P"):
    """Temporarily make the simulator's 'tiny' TSO imaging size ``nints`` integrations."""
    from simulator import modes

    sizes = modes.MODES["nircam_tso_image"]["sizes"]
    old = sizes["tiny"]
    sizes["tiny"] = (subarray, "RAPID", ngroups, nints, {})
    try:
        yield
    finally:
        sizes["tiny"] = old


def _truth(sset):
    return json.loads(Path(sset.truths[0]).read_text())


@pytest.fixture(scope="module")
def tiny_chain(tiny_sets, crds_cache, tmp_path_factory):
    sset = tiny_sets["nircam_tso_image"]
    phot, calints = run_chain(sset, tmp_path_factory.mktemp("tso_tiny"))
    return sset, QTable.read(phot), calints


def test_light_curve_columns_and_times(tiny_chain):
    sset, table, calints = tiny_chain
    for col in ("MJD", "BJD_TDB", "aperture_sum", "aperture_sum_err", "annulus_sum", "annulus_sum_err",
                "annulus_mean", "annulus_mean_err", "aperture_bkg", "aperture_bkg_err",
                "net_aperture_sum", "net_aperture_sum_err", "xcenter", "ycenter", "flag"):
        assert col in table.colnames, col
    for key in ("instrument", "detector", "filter", "subarray", "target", "apertures"):
        assert key in table.meta, key
    with fits.open(sset.exposures[0]) as hdul:
        it = hdul["INT_TIMES"].data
        nints = hdul[0].header["NINTS"]
    assert len(table) == nints
    np.testing.assert_array_equal(table["MJD"], it["int_mid_MJD_UTC"])
    np.testing.assert_array_equal(table["BJD_TDB"], it["int_mid_BJD_TDB"])
    truth = _truth(sset)
    np.testing.assert_allclose(table["MJD"], truth["scene"]["int_mid_mjd"], rtol=0, atol=1e-9)
    # the star is where the simulator put it (centroid, 0-based)
    star = truth["scene"]["star"]
    assert abs(table["xcenter"][0].value - star["x"]) < 0.1
    assert abs(table["ycenter"][0].value - star["y"]) < 0.1
    assert np.isfinite(table["net_aperture_sum"]).all()
    # DN/s calints are converted to electrons with the GAIN reference; MJy/sr (after photom) to Jy
    bunit = fits.getheader(calints, "SCI").get("BUNIT")
    assert str(table["net_aperture_sum"].unit) == {"DN/s": "electron", "MJy/sr": "Jy"}[bunit]


def test_transit_depth_matches_truth_tiny(tiny_chain):
    sset, table, _ = tiny_chain
    truth = _truth(sset)
    depth, err, _, _ = fit_depth(table, truth)
    true = truth["scene"]["transit_depth"]
    assert abs(depth - true) < 3 * err, (depth, err, true)
    assert err < 0.3 * true                     # the test has power: depth detected at > 3 sigma


@pytest.mark.slow
def test_noise_and_errors_2000_integrations(tmp_path):
    """Depth, scatter vs. photon + read noise, and error calibration on 2000 integrations."""
    from simulator import crds_cache as cache, modes
    from tests.conftest import _reset_crds

    with tso_size(2000):
        sset = modes.simulate("nircam_tso_image", tmp_path / "sim", size="tiny", seed=7)
    root = cache.build_crds_cache(tmp_path / "crds", modes.configurations([sset]))
    old = {k: os.environ.get(k) for k in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT")}
    os.environ["CRDS_PATH"] = str(root)
    os.environ.pop("CRDS_SERVER_URL", None)
    os.environ.pop("CRDS_CONTEXT", None)
    _reset_crds()
    try:
        phot, _ = run_chain(sset, tmp_path / "out")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reset_crds()
    table = QTable.read(phot)
    truth = _truth(sset)
    depth, err, model, resid = fit_depth(table, truth)
    true = truth["scene"]["transit_depth"]
    assert abs(depth - true) < 3 * err, (depth, err, true)

    f = table["net_aperture_sum"].value
    rel = (f - model) / model
    sigma_exp = expected_relative_sigma(sset, table)
    scatter_ratio = np.std(rel / sigma_exp, ddof=2)
    assert 0.9 <= scatter_ratio <= 1.1, scatter_ratio
    error_ratio = np.std(resid, ddof=2)
    assert 0.9 <= error_ratio <= 1.15, error_ratio
    lc = np.asarray(truth["scene"]["relative_flux"])
    oot = lc == 1.0
    oot_ratio = np.std(rel[oot] / sigma_exp[oot], ddof=1)
    print(f"depth {depth:.5f} +- {err:.5f} (truth {true:.5f}); scatter/expected {scatter_ratio:.3f} "
          f"(out of transit only: {oot_ratio:.3f}, n={oot.sum()}); "
          f"std of normalised residuals {error_ratio:.3f}")
    assert oot.sum() >= 500, oot.sum()
    assert 0.9 <= oot_ratio <= 1.1, oot_ratio
