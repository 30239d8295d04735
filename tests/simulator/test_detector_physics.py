"""Statistics of the simulated ramps against the truth they were made from."""

import numpy as np
import pytest

from simulator.detectors import (Subarray, detector_properties, frame_time, get_detector,
                                 get_subarray)
from simulator.ramps import RampTruth, Readout, readout_for, simulate_ramps

DET = "NRCA1"
SUB = get_subarray(DET, "SUB160")         # 160 x 160, no reference pixels


def _cut(a):
    return SUB.cut(a)


def test_cds_readnoise_matches_reference():
    ro = readout_for("RAPID", DET, SUB, nints=4, ngroups=2)
    data, _ = simulate_ramps(DET, SUB, ro, np.zeros(SUB.shape), seed=11,
                             include={"readnoise", "bias"})
    diff = data[:, 1].astype(np.float64) - data[:, 0]
    rn = _cut(detector_properties(DET).readnoise_cds).astype(np.float64)
    # rounding to integers adds 2/12 DN^2 to a CDS difference
    measured = np.sqrt(np.mean(diff ** 2) - 2 / 12)
    expected = np.sqrt(np.mean(rn ** 2))
    assert measured == pytest.approx(expected, rel=0.05)
    # per-pixel: the spread follows the per-pixel map (high-noise pixels are noisier)
    hi = rn > np.percentile(rn, 80)
    lo = rn < np.percentile(rn, 20)
    assert diff[:, hi].std() > diff[:, lo].std()


def test_poisson_variance_of_group_differences():
    rate_e = 2000.0
    ro = readout_for("RAPID", DET, SUB, nints=2, ngroups=6)
    data, truth = simulate_ramps(DET, SUB, ro, np.full(SUB.shape, rate_e), seed=5,
                                 include={"poisson", "readnoise", "gain"})
    props = detector_properties(DET)
    gain = _cut(props.sim_gain).astype(np.float64)
    rn = _cut(props.readnoise_cds).astype(np.float64)
    d = np.diff(data.astype(np.float64), axis=1)           # (nints, ngroups-1, ny, nx)
    expected_mean = rate_e * ro.tgroup / gain
    resid = d - expected_mean
    var_poisson = np.mean(resid ** 2) - np.mean(rn ** 2) - 2 / 12
    expected = np.mean(rate_e * ro.tgroup / gain ** 2)
    assert var_poisson == pytest.approx(expected, rel=0.05)
    # mean signal per group in DN is rate * tgroup / gain, and the truth says so
    assert np.mean(d) == pytest.approx(np.mean(expected_mean), rel=0.002)
    np.testing.assert_allclose(truth.rate_dn[0], rate_e / gain, rtol=1e-6)


def test_cosmic_ray_rate_and_steps():
    rate = 1e-3                      # hits per pixel per second
    ro = readout_for("RAPID", DET, SUB, nints=3, ngroups=10)
    data, truth = simulate_ramps(DET, SUB, ro, np.zeros(SUB.shape), seed=3,
                                 cosmic_ray_rate=rate, include={"cosmic_rays", "gain"})
    npix = SUB.xsize * SUB.ysize
    expected = rate * npix * ro.integration_time * ro.nints
    n = len(truth.cosmic_rays)
    assert abs(n - expected) < 3 * np.sqrt(expected)
    cr = truth.cosmic_rays
    assert cr["charge_e"].min() >= 100 and cr["charge_e"].max() <= 50000
    # with no other effect, the step in the recorded group equals the charge in DN
    gain = _cut(detector_properties(DET).sim_gain)
    key = cr["integ"] * npix + cr["y"] * SUB.xsize + cr["x"]
    keys, counts = np.unique(key, return_counts=True)
    single = np.isin(key, keys[counts == 1])            # pixels hit once in an integration
    checked = 0
    for hit in cr[single]:
        i, g, y, x = hit["integ"], hit["group"], hit["y"], hit["x"]
        ramp = data[i, :, y, x].astype(np.float64)
        before = ramp[g - 1] if g > 0 else 0.0
        assert ramp[g] - before == pytest.approx(hit["charge_e"] / gain[y, x], abs=1.0)
        assert np.all(ramp[g:] == ramp[g])          # every later group carries the step
        checked += 1
    assert checked > 50


def test_linearity_correction_inverts_forward_model():
    for name in ("NRCA1", "MIRIMAGE"):
        det = get_detector(name)
        props = detector_properties(name)
        ys = slice(300, 364)
        xs = slice(300, 364)
        sat = props.saturation[ys, xs].astype(np.float64)
        bias = props.bias[ys, xs].astype(np.float64)
        coeffs = props.linearity_coeffs[:, ys, xs].astype(np.float64)
        good = np.all(np.isfinite(coeffs), axis=0) & np.isfinite(sat)
        # linear signals from 100 DN up to the level that just reaches saturation
        fractions = np.linspace(0.01, 1.0, 40)[:, None, None]
        # measured signal that saturates is sat - bias; map it to linear via the correction
        offset = bias if det.is_miri else 0.0
        x_sat = offset + (sat - bias)
        lin_sat = sum(c * x_sat ** k for k, c in enumerate(coeffs)) - offset
        linear = (fractions * lin_sat).astype(np.float32)
        window = Subarray("W", 301, 301, 64, 64, 1, 1, 2)
        measured = props.nonlinear_forward(linear, window)
        x = offset + measured.astype(np.float64)
        corrected = sum(c * x ** k for k, c in enumerate(coeffs)) - offset
        rel = np.abs(corrected - linear) / np.maximum(linear, 1.0)
        assert np.nanmax(rel[:, good]) < 1e-3, name
        # the non-linearity is real: measured is several per cent low near saturation
        assert np.median((linear[-1] - measured[-1])[good] / linear[-1][good]) > 0.03


def test_linearity_end_to_end_ramp():
    rate_e = 3000.0
    ro = readout_for("RAPID", DET, SUB, nints=1, ngroups=10)
    data, truth = simulate_ramps(DET, SUB, ro, np.full(SUB.shape, rate_e), seed=1,
                                 include={"nonlinearity", "bias", "gain"})
    props = detector_properties(DET)
    coeffs = _cut(props.linearity_coeffs).astype(np.float64)
    d = data[0].astype(np.float64) - _cut(props.bias)
    corrected = sum(c * d ** k for k, c in enumerate(coeffs))
    expected = truth.rate_dn[0] * (np.arange(ro.ngroups)[:, None, None] + 1) * ro.tframe
    ok = np.all(np.isfinite(coeffs), axis=0)
    rel = np.abs(corrected - expected)[:, ok] / expected[:, ok]
    assert rel.max() < 1e-3 + 0.5 / expected.min()       # 0.1 % (plus uint16 rounding)


def test_saturation_truth_marks_groups_at_or_above_threshold():
    ro = readout_for("RAPID", DET, SUB, nints=2, ngroups=8)
    rate = np.linspace(2e4, 2.5e5, SUB.xsize)[None, :] * np.ones(SUB.shape)
    data, truth = simulate_ramps(DET, SUB, ro, rate, seed=2)
    sat = _cut(detector_properties(DET).saturation)
    above = data.astype(np.float64) >= sat[None, None]
    first = np.where(above.any(axis=1), np.argmax(above, axis=1), -1)
    np.testing.assert_array_equal(truth.saturated_group, first)
    assert 0.2 < np.mean(truth.saturated_group >= 0) < 0.99
    # clipping: nothing exceeds the threshold, and groups past saturation sit on it
    assert np.all(data[:, :, np.isfinite(sat)] <= sat[np.isfinite(sat)])
    i, y, x = np.nonzero(truth.saturated_group == 2)
    assert len(i) > 0 and np.all(data[i, 5, y, x] == sat[y, x])
    # NO_SAT_CHECK pixels are never marked
    assert np.all(truth.saturated_group[:, ~np.isfinite(sat)] == -1)


def test_dark_and_group_averaging_match_dark_reference():
    from simulator.references import reference_arrays
    ro = Readout("MEDIUM8", nints=1, ngroups=4, nframes=8, groupgap=2,
                 tframe=frame_time(DET, SUB), drop_frames1=1)
    data, _ = simulate_ramps(DET, SUB, ro, np.zeros(SUB.shape), seed=4,
                             include={"dark", "gain", "badpix"})
    dark = reference_arrays("dark", DET, SUB, readout=ro)["SCI"]
    assert np.abs(data[0].astype(np.float64) - dark).max() <= 0.5 + 1e-3
    hot = (_cut(detector_properties(DET).dq) & 2048) != 0
    assert hot.any() and dark[-1][hot].min() > 10 * np.median(dark[-1])


def test_frame_and_subarray_timing():
    assert frame_time("NRCA1", get_subarray("NRCA1", "FULL")) == pytest.approx(10.73676)
    s = get_subarray("NRCA1", "SUB64P")
    assert (s.xsize, s.ysize, s.namps) == (64, 64, 1)
    assert frame_time("NRCA1", s) == pytest.approx((64 + 12) * 65 * 1e-5)
    g = get_subarray("NRCALONG", "SUBGRISM64")
    assert frame_time("NRCALONG", g) == pytest.approx((2048 + 12) * 65 * 1e-5)
    assert frame_time("MIRIMAGE", get_subarray("MIRIMAGE", "FULL")) == pytest.approx(2.77504)
    assert get_subarray("MIRIMAGE", "FULL").shape == (1024, 1032)
    assert get_subarray("NRS1", "SUBS200A1").shape == (64, 2048)
    ro = readout_for("MEDIUM8", "NRCA1", "FULL", nints=2, ngroups=5)
    assert ro.tgroup == pytest.approx(10 * 10.73676)
    assert ro.effinttm == pytest.approx(4 * ro.tgroup)
    with pytest.raises(ValueError, match="SUBNOPE"):
        get_subarray("NRCA1", "SUBNOPE")
    with pytest.raises(ValueError, match="XYZ"):
        get_detector("XYZ")


def test_reference_pixels_get_no_signal_but_offsets():
    sub = get_subarray(DET, "SUB64P")          # lower-left corner: 4 reference rows/columns
    ro = readout_for("RAPID", DET, sub, nints=1, ngroups=4)
    data, truth = simulate_ramps(DET, sub, ro, np.full(sub.shape, 5000.0), seed=9,
                                 include={"bias", "gain", "refpix", "poisson"})
    bias = sub.cut(detector_properties(DET).bias)
    ref = sub.cut(get_detector(DET).reference_pixel_mask())
    d = data[0].astype(np.float64) - bias
    # reference pixels: only the per-group offsets (common to all pixels of the output)
    refmean = np.array([d[g][ref].mean() for g in range(4)])
    assert np.all(np.abs(d[:, ref] - refmean[:, None]) < 3 * 3 + 1)
    assert np.all(truth.rate_dn[0][ref] == 0)
    # light-sensitive pixels see signal plus the same offsets
    sci = ~ref
    signal = (d[:, sci] - refmean[:, None]).mean(axis=1)
    expected = np.mean(truth.rate_dn[0][sci]) * (np.arange(4) + 1) * ro.tframe
    np.testing.assert_allclose(signal, expected, rtol=0.01, atol=3)


def test_determinism_and_truth_roundtrip(tmp_path):
    ro = readout_for("RAPID", DET, SUB, nints=2, ngroups=3)
    rate = np.full(SUB.shape, 50.0)
    a, ta = simulate_ramps(DET, SUB, ro, rate, seed=42)
    b, tb = simulate_ramps(DET, SUB, ro, rate, seed=42)
    c, _ = simulate_ramps(DET, SUB, ro, rate, seed=43)
    assert a.dtype == np.uint16 and a.shape == (2, 3, 160, 160)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert ta.cosmic_rays.tobytes() == tb.cosmic_rays.tobytes()
    path = ta.save(tmp_path / "truth.fits")
    back = RampTruth.load(path)
    np.testing.assert_array_equal(back.rate_dn, ta.rate_dn)
    np.testing.assert_array_equal(back.saturated_group, ta.saturated_group)
    np.testing.assert_array_equal(back.cosmic_rays, ta.cosmic_rays)
    assert back.meta["DETECTOR"] == DET and back.meta["SEED"] == 42


def test_properties_versions_and_speed():
    import time
    p1 = detector_properties("NIS")
    p2 = detector_properties("NIS", version=2)
    assert p1 is detector_properties("nis")          # cached
    ratio = np.nanmedian(p2.gain / p1.gain)
    assert ratio == pytest.approx(1.03, abs=0.002)
    assert np.nanmedian(p2.readnoise_cds / p1.readnoise_cds) == pytest.approx(1.04, abs=1e-4)
    assert p2.bias is p1.bias
    gain = p1.gain[4:-4, 4:-4]
    assert 1.7 < np.nanmedian(gain) < 2.2
    assert 0.001 < np.mean(p1.dq[4:-4, 4:-4] != 0) < 0.01
    assert np.all(p1.dq[:4] & (1 << 31))
    t = time.perf_counter()
    detector_properties("NRS2", seed=7)
    assert time.perf_counter() - t < 3.0


@pytest.mark.slow
def test_full_frame_speed():
    import time
    sub = get_subarray("NRCA3", "FULL")
    ro = readout_for("RAPID", "NRCA3", sub, nints=1, ngroups=10)
    detector_properties("NRCA3")
    t = time.perf_counter()
    data, _ = simulate_ramps("NRCA3", sub, ro, np.full(sub.shape, 2.0), seed=0)
    assert time.perf_counter() - t < 15
    assert data.shape == (1, 10, 2048, 2048)
