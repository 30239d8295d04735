"""EMI correction: an injected sinusoid at a known frequency is removed by phase folding."""
import numpy as np
import pytest

from steps.emicorr.emi_waveform import EMI_FREQUENCIES_HZ, pixel_phase, subtract_emi


def emi_scene(freqs_amps, nints=2, ngroups=10, ny=40, nx=64, noise=0.5, seed=0, frameclocks=None):
    rng = np.random.default_rng(seed)
    g = np.arange(ngroups)[None, :, None, None]
    truth = rng.uniform(5000, 6000, (nints, 1, ny, nx)) + rng.uniform(0, 50, (1, 1, ny, nx)) * g
    emi = np.zeros((nints, ngroups, ny, nx))
    for f, a in freqs_amps:
        emi += a * np.sin(2 * np.pi * pixel_phase(nints, ngroups, ny, nx, f,
                                                  frameclocks=frameclocks))
    data = (truth + emi + rng.normal(0, noise, emi.shape)).astype(np.float32)
    return data, truth, emi


def amplitude(resid, f, shape):
    ph = 2 * np.pi * pixel_phase(*shape, f)
    return np.hypot(2 * np.mean(resid * np.sin(ph)), 2 * np.mean(resid * np.cos(ph)))


@pytest.mark.parametrize("freq", [390.625, 218.3, 164.9, 10.039])
def test_emicorr_removes_injected_sinusoid(freq):
    A = 5.0
    data, truth, emi = emi_scene([(freq, A)])
    assert amplitude(data - truth, freq, data.shape) == pytest.approx(A, rel=0.05)
    out = subtract_emi(data, [freq])
    assert out[freq] == pytest.approx(A, rel=0.2)
    left = amplitude(data - truth, freq, data.shape)
    assert left < 0.1 * A, left


def test_emicorr_two_frequencies_by_name():
    data, truth, emi = emi_scene([(390.625, 4.0), (218.3, 3.0)], seed=1)
    subtract_emi(data, ["Hz390", "Hz218"])
    assert EMI_FREQUENCIES_HZ["Hz390"] == 390.625
    assert amplitude(data - truth, 390.625, data.shape) < 0.4
    assert amplitude(data - truth, 218.3, data.shape) < 0.3


def test_emicorr_slow_phase_drift_still_measured():
    # 218.3 Hz with 32 rows: the phase advances only 0.026 cycle per group, so most of each
    # pixel's EMI looks like bias + slope; the joint fit still recovers the waveform
    data, truth, emi = emi_scene([(218.3, 5.0)], ny=32)
    phase = pixel_phase(*data.shape, 218.3)
    assert np.ptp(np.diff(phase[0, :, 0, 0]) % 1) < 1e-6 and (np.diff(phase[0, :, 0, 0]) % 1)[0] < 0.03
    subtract_emi(data, [218.3])
    assert amplitude(data - truth, 218.3, data.shape) < 0.5


def test_emicorr_in_phase_pattern_left_alone():
    # frame time = 5 periods of 390.625 Hz: every group of a pixel has the same phase, the EMI is
    # indistinguishable from bias; nothing must be subtracted (and nothing blows up)
    data, truth, emi = emi_scene([(390.625, 5.0)], frameclocks=1280)
    before = data.copy()
    out = subtract_emi(data, [390.625], frameclocks=1280)
    assert out[390.625] == 0.0
    np.testing.assert_array_equal(data, before)


def test_emicorr_flagged_groups_do_not_bias_waveform():
    data, truth, emi = emi_scene([(390.625, 5.0)], seed=2)
    gdq = np.zeros(data.shape, np.uint8)
    data[0, 5:, 3, 3] += 30000.0  # saturated-like garbage, flagged
    truth[0, 0, 3, 3] += 0.0
    gdq[0, 5:, 3, 3] = 2
    subtract_emi(data, [390.625], groupdq=gdq)
    good = np.ones(data.shape, bool)
    good[0, :, 3, 3] = False
    resid = np.where(good, data - truth, 0.0)
    assert amplitude(resid, 390.625, data.shape) < 0.5


def test_emicorr_too_few_groups_and_bad_shape():
    data = np.zeros((1, 2, 4, 8), np.float32)
    assert subtract_emi(data, [390.625]) == {}
    with pytest.raises(ValueError, match=r"expected \(1, 3, 4, 8\), found \(1, 2, 4, 8\)"):
        subtract_emi(np.zeros((1, 3, 4, 8), np.float32), [390.625],
                     groupdq=np.zeros((1, 2, 4, 8), np.uint8))
