"""Stage-1 detector corrections on small hand-made arrays with analytic answers.

refpix, saturation and emicorr have their own files (test_refpix.py, test_saturation.py,
test_emicorr.py).
"""
import numpy as np
import pytest

from steps.charge_migration.chargeloss import flag_charge_migration
from steps.dark_current.dark_subtraction import average_dark_frames, subtract_dark
from steps.dq_init.mask_dq import apply_mask
from steps.firstframe.first_group import flag_first_group
from steps.gain_scale.gain_factor import scale_by_gain_factor
from steps.group_scale.scale_groups import scale_groups
from steps.ipc.ipc_deconvolution import correct_ipc, nir_reference_mask
from steps.lastframe.last_group import flag_last_group
from steps.linearity.polynomial import apply_linearity
from steps.persistence.persistence_flags import (flag_persistence, persistence_skip_reason,
                                                 previously_saturated_from_groupdq)
from steps.reset.reset_subtraction import subtract_reset
from steps.rscd.baseline import flag_rscd_groups
from steps.superbias.bias_subtraction import subtract_bias

DNU, SAT, CHARGELOSS = 1, 2, 128
NO_LIN_CORR, UNRELIABLE_BIAS, UNRELIABLE_DARK = 1 << 20, 1 << 22, 1 << 23
PERSISTENCE = 32


def ramp(nints=1, ngroups=5, ny=6, nx=7, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(1000.0, 10.0, (nints, ngroups, ny, nx)).astype(np.float32)
    return data, np.zeros(data.shape, np.uint8), np.zeros((ny, nx), np.uint32)


# ---------------------------------------------------------------- group_scale
def test_group_scale_multiplies_by_frmdivsr_over_nframes():
    data, _, _ = ramp()
    before = data.copy()
    out, factor = scale_groups(data, frmdivsr=4, nframes=3)
    assert out is data and factor == pytest.approx(4 / 3)
    np.testing.assert_allclose(data, before * (4 / 3), rtol=1e-6)


def test_group_scale_noop_when_equal():
    data, _, _ = ramp()
    before = data.copy()
    assert scale_groups(data, 4, 4)[1] == 1.0
    np.testing.assert_array_equal(data, before)


# ---------------------------------------------------------------- dq_init
def test_dq_init_ors_mask_into_pixeldq_only_by_default():
    _, gdq, pdq = ramp()
    pdq[0, 0] = 4
    mask = np.zeros_like(pdq)
    mask[0, 0] = 1 | 1024
    mask[1, 2] = 2048
    out = apply_mask(pdq, mask, gdq)
    assert out is pdq
    assert pdq[0, 0] == 4 | 1 | 1024 and pdq[1, 2] == 2048 and pdq.sum() == 4 + 1 + 1024 + 2048
    assert not gdq.any()


def test_dq_init_flag_groups_propagates_do_not_use():
    _, gdq, pdq = ramp(nints=2)
    mask = np.zeros_like(pdq)
    mask[3, 4] = 1
    apply_mask(pdq, mask, gdq, flag_groups=True)
    assert (gdq[:, :, 3, 4] == DNU).all()
    assert gdq.sum() == gdq[:, :, 3, 4].sum()


def test_dq_init_wrong_shape():
    _, _, pdq = ramp()
    with pytest.raises(ValueError, match=r"expected \(6, 7\).*found \(7, 6\)"):
        apply_mask(pdq, np.zeros((7, 6), np.uint32))


# ---------------------------------------------------------------- superbias
def test_superbias_removes_injected_bias_exactly():
    rng = np.random.default_rng(3)
    truth = rng.normal(0, 50, (2, 4, 5, 6)).astype(np.float32)
    bias = rng.uniform(10000, 15000, (5, 6)).astype(np.float32)
    data = truth + bias
    pdq = np.zeros((5, 6), np.uint32)
    bias_dq = np.zeros((5, 6), np.uint32)
    bias_dq[2, 2] = 2048
    subtract_bias(data, pdq, bias, bias_dq)
    np.testing.assert_allclose(data, truth, atol=2e-3)  # float32 rounding at 1.5e4 DN
    assert pdq[2, 2] == 2048 and pdq.sum() == 2048


def test_superbias_nan_is_zero_and_unreliable():
    data, _, pdq = ramp()
    before = data.copy()
    bias = np.full((6, 7), 100.0, np.float32)
    bias[1, 1] = np.nan
    subtract_bias(data, pdq, bias)
    np.testing.assert_array_equal(data[..., 1, 1], before[..., 1, 1])
    assert np.isfinite(data).all()
    assert pdq[1, 1] == UNRELIABLE_BIAS and (pdq != 0).sum() == 1


def test_superbias_wrong_shape():
    data, _, pdq = ramp()
    with pytest.raises(ValueError, match=r"expected \(6, 7\), found \(6, 8\)"):
        subtract_bias(data, pdq, np.zeros((6, 8)))


# ---------------------------------------------------------------- linearity
def test_linearity_recovers_linear_ramp():
    # measured d = L - a L^2; the inverse series L = d + a d^2 + 2a^2 d^3 + 5a^3 d^4 + 14a^4 d^5
    ny, nx, ng = 4, 5, 8
    a = np.random.default_rng(1).uniform(0.5e-6, 1.5e-6, (ny, nx))
    rate = np.linspace(100, 3500, ny * nx).reshape(ny, nx)
    L = np.arange(1, ng + 1)[:, None, None] * rate  # up to 28000 DN
    d = (L - a * L**2)[None].astype(np.float32)
    coeffs = np.stack([np.zeros_like(a), np.ones_like(a), a, 2 * a**2, 5 * a**3, 14 * a**4])
    gdq = np.zeros(d.shape, np.uint8)
    pdq = np.zeros((ny, nx), np.uint32)
    apply_linearity(d, gdq, pdq, coeffs)
    np.testing.assert_allclose(d[0], L, rtol=1e-4)
    assert not pdq.any()


def test_linearity_bad_coeffs_identity_and_saturated_untouched():
    data, gdq, pdq = ramp()
    before = data.copy()
    coeffs = np.zeros((3, 6, 7))
    coeffs[1] = 2.0  # doubles the signal
    coeffs[:, 0, 0] = [0.0, np.nan, 0.0]
    coeffs[:, 0, 1] = 0.0
    gdq[0, 3:, 2, 2] = SAT
    apply_linearity(data, gdq, pdq, coeffs)
    for y, x in [(0, 0), (0, 1)]:
        np.testing.assert_array_equal(data[..., y, x], before[..., y, x])
        assert pdq[y, x] == NO_LIN_CORR
    np.testing.assert_array_equal(data[0, 3:, 2, 2], before[0, 3:, 2, 2])
    np.testing.assert_allclose(data[0, :3, 2, 2], 2 * before[0, :3, 2, 2])
    np.testing.assert_allclose(data[..., 4, 4], 2 * before[..., 4, 4])
    assert (pdq != 0).sum() == 2


def test_linearity_wrong_shape():
    data, gdq, pdq = ramp()
    with pytest.raises(ValueError, match=r"expected \(ncoeffs, 6, 7\), found \(3, 7, 6\)"):
        apply_linearity(data, gdq, pdq, np.zeros((3, 7, 6)))


# ---------------------------------------------------------------- dark_current
def test_dark_averaging_nframes4_groupgap1_matches_frame_by_frame():
    rng = np.random.default_rng(7)
    ng, nf, gap = 3, 4, 1
    frames = rng.normal(5.0, 2.0, (20, 3, 4)).astype(np.float32)
    expected = np.stack([frames[k * (nf + gap):k * (nf + gap) + nf].mean(axis=0)
                         for k in range(ng)])
    avg = average_dark_frames(frames, ng, nframes=nf, groupgap=gap)
    np.testing.assert_allclose(avg, expected, rtol=1e-6)
    data = np.zeros((2, ng, 3, 4), np.float32)
    pdq = np.zeros((3, 4), np.uint32)
    _, out = subtract_dark(data, pdq, frames, nframes=nf, groupgap=gap, return_dark=True)
    np.testing.assert_allclose(data, -expected[None].repeat(2, 0), rtol=1e-6)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_dark_matching_pattern_used_directly_and_drop_frames():
    frames = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    np.testing.assert_array_equal(average_dark_frames(frames, 4, nframes=2, groupgap=0,
                                                      dark_nframes=2), frames[:4])
    avg = average_dark_frames(frames, 2, nframes=2, groupgap=1, drop_frames1=1)
    np.testing.assert_allclose(avg[:, 0, 0], [1.5, 4.5])


def test_dark_miri_4d_uses_last_dark_integration():
    dark = np.zeros((2, 3, 2, 2), np.float32)
    dark[0] = 1.0
    dark[1] = 5.0
    data = np.zeros((3, 3, 2, 2), np.float32)
    subtract_dark(data, np.zeros((2, 2), np.uint32), dark)
    assert (data[0] == -1).all() and (data[1] == -5).all() and (data[2] == -5).all()


def test_dark_too_few_groups_raises():
    data, _, pdq = ramp(ngroups=5)
    with pytest.raises(ValueError, match="needs 5"):
        subtract_dark(data, pdq, np.zeros((3, 6, 7)), dark_nframes=1)
    with pytest.raises(ValueError, match="needs 20"):
        subtract_dark(data, pdq, np.zeros((10, 6, 7)), nframes=4)


def test_dark_nan_and_shape():
    data, _, pdq = ramp(ngroups=2)
    before = data.copy()
    dark = np.ones((2, 6, 7), np.float32)
    dark[1, 2, 3] = np.nan
    subtract_dark(data, pdq, dark)
    assert np.isfinite(data).all() and pdq[2, 3] == UNRELIABLE_DARK
    np.testing.assert_allclose(data[0, 1, 2, 3], before[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 6, 7\), found \(2, 7, 7\)"):
        subtract_dark(data, pdq, np.ones((2, 7, 7)))


# ---------------------------------------------------------------- ipc
def test_ipc_delta_kernel_is_identity_and_refpix_untouched():
    data, _, _ = ramp(ny=12, nx=12)
    before = data.copy()
    k = np.zeros((3, 3))
    k[1, 1] = 1.0
    correct_ipc(data, k, full_shape=(12, 12))
    np.testing.assert_array_equal(data, before)


def test_ipc_kernel_applied_and_refpix_contribute_zero():
    ny = nx = 16
    data = np.zeros((1, 2, ny, nx), np.float32)
    data[0, :, 8, 8] = 100.0
    data[0, :, 3, 8] = 1e4  # reference pixel (rows 0-3) adjacent to science pixel (4, 8)
    data[0, :, 4, 10] = 7.0
    k = np.array([[0.0, -0.02, 0.0], [-0.03, 1.1, -0.01], [0.0, -0.04, 0.0]])
    correct_ipc(data, k, full_shape=(ny, nx))
    # out[y, x] = sum K[j, i] in[y + j - 1, x + i - 1]
    assert data[0, 0, 8, 8] == pytest.approx(110.0)
    assert data[0, 0, 7, 8] == pytest.approx(-0.04 * 100)   # K[2,1] * in[8, 8]
    assert data[0, 0, 9, 8] == pytest.approx(-0.02 * 100)   # K[0,1] * in[8, 8]
    assert data[0, 0, 8, 9] == pytest.approx(-0.03 * 100)   # K[1,0] * in[8, 8]
    assert data[0, 0, 8, 7] == pytest.approx(-0.01 * 100)   # K[1,2] * in[8, 8]
    assert data[0, 0, 3, 8] == 1e4                          # reference pixel unchanged
    assert data[0, 0, 4, 8] == 0.0                          # its neighbour (3, 8) contributes 0
    assert data[0, 0, 4, 9] == pytest.approx(-0.01 * 7)     # K[1,2] * in[4, 10]
    assert data[0, 0, 4, 10] == pytest.approx(1.1 * 7)


def test_ipc_per_pixel_kernel_equals_constant_kernel():
    data, _, _ = ramp(ny=10, nx=11)
    d2 = data.copy()
    k = np.array([[0.001, -0.02, 0.0], [-0.03, 1.1, -0.01], [0.0, -0.04, 0.002]])
    correct_ipc(data, k, full_shape=(10, 11))
    correct_ipc(d2, np.broadcast_to(k[:, :, None, None], (3, 3, 10, 11)).copy(),
                full_shape=(10, 11))
    np.testing.assert_allclose(data, d2, rtol=1e-6)
    mask = nir_reference_mask((10, 11), full_shape=(10, 11))
    assert mask.sum() == 10 * 11 - 2 * 3


def test_ipc_wrong_kernel_shape():
    data, _, _ = ramp()
    with pytest.raises(ValueError, match=r"found \(3, 3, 5, 5\)"):
        correct_ipc(data, np.zeros((3, 3, 5, 5)))


# ---------------------------------------------------------------- charge_migration
def test_charge_migration_flags_from_first_group_above_threshold():
    data = np.array([1e4, 2e4, 3e4, 2.4e4, 4e4], np.float32)[None, :, None, None] * np.ones(
        (1, 1, 2, 2), np.float32)
    data[0, :, 1, 1] = [1e3, 2e3, 3e3, 4e3, 5e3]
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 4, 0, 1] = SAT
    assert flag_charge_migration(data, gdq, signal_threshold=25000.0)
    expect = np.array([0, 0, 1, 1, 1]) * (CHARGELOSS | DNU)
    np.testing.assert_array_equal(gdq[0, :, 0, 0], expect)
    np.testing.assert_array_equal(gdq[0, :, 0, 1], [0, 0, 129, 129, SAT])
    assert not gdq[0, :, 1, 1].any()


def test_charge_migration_skips_two_groups():
    gdq = np.zeros((1, 2, 1, 1), np.uint8)
    assert not flag_charge_migration(np.full((1, 2, 1, 1), 5e4, np.float32), gdq)
    assert not gdq.any()


# ---------------------------------------------------------------- gain_scale
def test_gain_scale_values_and_variances():
    sci = np.full((3, 3), 2.0, np.float32)
    err = np.full((3, 3), 0.5, np.float32)
    vp = np.full((3, 3), 0.2, np.float32)
    vr = np.full((3, 3), 0.05, np.float32)
    assert scale_by_gain_factor(sci, err, gain_factor=1.5, var_poisson=vp, var_rnoise=vr) == 1.5
    np.testing.assert_allclose([sci[0, 0], err[0, 0], vp[0, 0], vr[0, 0]],
                               [3.0, 0.75, 0.45, 0.1125], rtol=1e-6)
    assert scale_by_gain_factor(sci, err, gain_factor=None) == 1.0
    assert sci[0, 0] == pytest.approx(3.0)


# ---------------------------------------------------------------- MIRI group flags
def test_firstframe_lastframe():
    gdq = np.zeros((2, 5, 2, 2), np.uint8)
    assert flag_first_group(gdq) and flag_last_group(gdq)
    assert (gdq[:, 0] == DNU).all() and (gdq[:, -1] == DNU).all() and not gdq[:, 1:4].any()
    small = np.zeros((1, 3, 1, 1), np.uint8)
    assert not flag_first_group(small) and flag_last_group(small)
    np.testing.assert_array_equal(small[0, :, 0, 0], [0, 0, DNU])
    tiny = np.zeros((1, 2, 1, 1), np.uint8)
    assert not flag_last_group(tiny) and not tiny.any()


def test_firstframe_bright_use_group1():
    gdq = np.zeros((1, 5, 1, 2), np.uint8)
    gdq[0, 2:, 0, 1] = SAT
    flag_first_group(gdq, bright_use_group1=True)
    assert gdq[0, 0, 0, 0] == DNU and gdq[0, 0, 0, 1] == 0


def test_rscd_flags_initial_groups_of_later_integrations():
    gdq = np.zeros((3, 6, 2, 2), np.uint8)
    assert flag_rscd_groups(gdq, 2)
    assert not gdq[0].any()
    assert (gdq[1:, :2] == DNU).all() and not gdq[1:, 2:].any()
    few = np.zeros((3, 4, 1, 1), np.uint8)
    assert not flag_rscd_groups(few, 2) and not few.any()
    one = np.zeros((1, 8, 1, 1), np.uint8)
    assert not flag_rscd_groups(one, 2)


def test_rscd_bright_use_group1():
    gdq = np.zeros((2, 6, 1, 2), np.uint8)
    gdq[1, 3:, 0, 1] = SAT  # only groups 2 (index) unsaturated after flagging 0-1
    flag_rscd_groups(gdq, 2, bright_use_group1=True)
    assert (gdq[1, :2, 0, 0] == DNU).all() and not gdq[1, :2, 0, 1].any()


# ---------------------------------------------------------------- reset
def test_reset_subtracts_per_integration_last_reused():
    ref = np.zeros((2, 3, 2, 2), np.float32)
    ref[0] = np.arange(3)[:, None, None]
    ref[1] = 10 * np.arange(3)[:, None, None]
    ref[1, 0, 0, 0] = np.nan
    data = np.zeros((3, 4, 2, 2), np.float32)
    pdq = np.zeros((2, 2), np.uint32)
    subtract_reset(data, pdq, ref)
    np.testing.assert_array_equal(data[0, :, 1, 1], [0, -1, -2, 0])
    np.testing.assert_array_equal(data[2, :, 1, 1], [0, -10, -20, 0])
    assert data[1, 0, 0, 0] == 0 and np.isfinite(data).all()
    with pytest.raises(ValueError, match=r"found \(2, 3, 3, 2\)"):
        subtract_reset(data, pdq, np.zeros((2, 3, 3, 2)))


# ---------------------------------------------------------------- persistence
def test_persistence_skip_logic_and_flags():
    assert "TRAPDENSITY" in persistence_skip_reason(None, object(), object())
    assert persistence_skip_reason(object(), object(), object()) is None
    assert persistence_skip_reason(input_trapsfilled=np.zeros(2)) is None
    pdq = np.zeros((3, 3), np.uint32)
    pers = np.zeros((3, 3))
    pers[0, 0] = 41.0
    pers[0, 1] = 39.0
    pers[0, 2] = np.nan
    prev = np.zeros((1, 4, 3, 3), np.uint8)
    prev[0, -1, 2, 2] = SAT
    n = flag_persistence(pdq, persistence=pers,
                         previously_saturated=previously_saturated_from_groupdq(prev))
    assert n == 2 and pdq[0, 0] == PERSISTENCE and pdq[2, 2] == PERSISTENCE
    assert (pdq != 0).sum() == 2


# ---------------------------------------------------------------- all-saturated ramps
def test_all_saturated_ramp_through_linearity_and_charge_migration():
    data, gdq, pdq = ramp(nints=2, ngroups=4)
    data[...] = 70000.0
    gdq[...] = SAT
    coeffs = np.zeros((3, 6, 7))
    coeffs[1] = 1.0
    coeffs[2] = 1e-5
    apply_linearity(data, gdq, pdq, coeffs)
    assert (data == 70000.0).all()
    flag_charge_migration(data, gdq)
    assert (gdq == SAT).all()
    flag_first_group(gdq, bright_use_group1=True)
    assert (gdq == SAT).all()  # bright pixels keep group 0 usable
