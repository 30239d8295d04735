"""Saturation flagging: thresholds, growth, A/D floor, frame-averaged groups, bad input."""
import numpy as np
import pytest

from steps.saturation.saturated_groups import flag_saturation, group_dilution

DNU, SAT, AD_FLOOR = 1, 2, 64
NO_SAT_CHECK = 1 << 21


def setup(ny=7, nx=7, ngroups=5, nints=1):
    data = np.full((nints, ngroups, ny, nx), 10.0, np.float32)
    return data, np.zeros(data.shape, np.uint8), np.zeros((ny, nx), np.uint32)


def test_flags_first_group_at_threshold_and_later():
    data, gdq, pdq = setup()
    data[0, :, 3, 3] = [10, 50, 100, 150, 99]  # reaches 100 in group 2; later drop still flagged
    flag_saturation(data, gdq, pdq, np.full((7, 7), 100.0), n_pix_grow_sat=0)
    np.testing.assert_array_equal(gdq[0, :, 3, 3], [0, 0, SAT, SAT, SAT])
    assert gdq.sum() == 3 * SAT


def test_growth_to_3x3_in_each_group():
    data, gdq, pdq = setup()
    data[0, :, 3, 3] = [10, 50, 100, 150, 200]
    data[0, :, 0, 6] = [10, 10, 10, 10, 200]  # corner pixel: growth clipped at the edge
    flag_saturation(data, gdq, pdq, np.full((7, 7), 100.0), n_pix_grow_sat=1)
    for g in range(5):
        expect = np.zeros((7, 7), np.uint8)
        if g >= 2:
            expect[2:5, 2:5] = SAT
        if g >= 4:
            expect[0:2, 5:7] = SAT
        np.testing.assert_array_equal(gdq[0, g], expect, err_msg=f"group {g}")


def test_growth_radius_2():
    data, gdq, pdq = setup()
    data[0, 1:, 3, 3] = 500
    flag_saturation(data, gdq, pdq, np.full((7, 7), 100.0), n_pix_grow_sat=2)
    assert (gdq[0, 1:, 1:6, 1:6] == SAT).all() and gdq[0, 1:].sum() == 4 * 25 * SAT


def test_ad_floor_flags_only_that_group_and_is_not_grown():
    data, gdq, pdq = setup()
    data[0, 1, 2, 2] = 0.0
    data[0, 3, 4, 4] = -5.0
    flag_saturation(data, gdq, pdq, np.full((7, 7), 100.0))
    assert gdq[0, 1, 2, 2] == AD_FLOOR | DNU and gdq[0, 3, 4, 4] == AD_FLOOR | DNU
    assert (gdq != 0).sum() == 2


def test_nan_threshold_and_no_sat_check_never_flag():
    data, gdq, pdq = setup()
    data[...] = 1e5
    thresh = np.full((7, 7), 100.0)
    thresh[1, 1] = np.nan
    sat_dq = np.zeros((7, 7), np.uint32)
    sat_dq[5, 5] = NO_SAT_CHECK
    flag_saturation(data, gdq, pdq, thresh, sat_dq=sat_dq, n_pix_grow_sat=0)
    assert not gdq[..., 1, 1].any() and not gdq[..., 5, 5].any()
    assert pdq[1, 1] == NO_SAT_CHECK and pdq[5, 5] == NO_SAT_CHECK
    assert (gdq[..., 0, 0] == SAT).all()


def test_all_saturated_ramp():
    data, gdq, pdq = setup(nints=2)
    data[...] = 70000.0
    flag_saturation(data, gdq, pdq, np.full((7, 7), 60000.0))
    assert (gdq == SAT).all()


def test_existing_saturated_flag_propagates():
    data, gdq, pdq = setup()
    gdq[0, 2, 1, 1] = SAT
    flag_saturation(data, gdq, pdq, np.full((7, 7), 100.0), n_pix_grow_sat=0)
    np.testing.assert_array_equal(gdq[0, :, 1, 1], [0, 0, SAT, SAT, SAT])


def test_frame_averaged_groups_match_frame_by_frame_saturation():
    # nframes=4, groupgap=1: a group is flagged when its LAST frame reached the threshold
    nframes, gap, ngroups = 4, 1, 6
    bias, thresh = 1000.0, 20000.0
    rates = np.linspace(100.0, 1500.0, 25)  # DN per frame
    frame_no = np.arange(1, ngroups * (nframes + gap) + 1)
    frames = bias + rates[:, None] * frame_no[None, :]  # (npix, nframes_total)
    groups = np.stack([frames[:, g * (nframes + gap):g * (nframes + gap) + nframes].mean(axis=1)
                       for g in range(ngroups)], axis=1)
    last = np.stack([frames[:, g * (nframes + gap) + nframes - 1] for g in range(ngroups)], axis=1)
    expected = np.maximum.accumulate(last >= thresh, axis=1)
    data = groups.T.reshape(1, ngroups, 5, 5).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros((5, 5), np.uint32)
    flag_saturation(data, gdq, pdq, np.full((5, 5), thresh), bias=np.full((5, 5), bias),
                    nframes=nframes, groupgap=gap, n_pix_grow_sat=0)
    got = (gdq[0] & SAT != 0).reshape(ngroups, 25).T
    np.testing.assert_array_equal(got, expected)
    # without the read pattern the group means would be compared with the raw threshold
    gdq2 = np.zeros_like(gdq)
    flag_saturation(data, gdq2, pdq, np.full((5, 5), thresh), nframes=nframes, groupgap=gap,
                    n_pix_grow_sat=0, use_readpatt=False)
    assert (gdq2 & SAT).sum() < (gdq & SAT).sum()


def test_group_dilution_values():
    dil, rp = group_dilution(3, nframes=4, groupgap=1)
    assert rp[1] == [6, 7, 8, 9]
    np.testing.assert_allclose(dil, [2.5 / 4, 7.5 / 9, 12.5 / 14])
    assert (group_dilution(3)[0] == 1).all()


def test_group2_mid_group_saturation_check():
    # faint pixel hit by a big event during group 2 (index 1): group 3 saturated
    nframes, ngroups, thresh = 4, 5, 10000.0
    data = np.zeros((1, ngroups, 1, 2), np.float32)
    ramp = [100.0, 3000.0, 12000.0, 12000.0, 12000.0]
    data[0, :, 0, 0] = ramp
    data[0, :, 0, 1] = ramp
    data[0, 1, 0, 1] = 2000.0  # below thresh / nframes = 2500: group 2 could not have saturated
    gdq = np.zeros(data.shape, np.uint8)
    flag_saturation(data, gdq, np.zeros((1, 2), np.uint32), np.full((1, 2), thresh),
                    nframes=nframes, n_pix_grow_sat=0)
    np.testing.assert_array_equal(gdq[0, :, 0, 0] & SAT, [0, SAT, SAT, SAT, SAT])
    np.testing.assert_array_equal(gdq[0, :, 0, 1] & SAT, [0, 0, SAT, SAT, SAT])
    gdq[...] = 0
    flag_saturation(data, gdq, np.zeros((1, 2), np.uint32), np.full((1, 2), thresh),
                    nframes=nframes, n_pix_grow_sat=0, use_readpatt=False)
    np.testing.assert_array_equal(gdq[0, :, 0, 0] & SAT, [0, 0, SAT, SAT, SAT])


def test_wrong_shapes():
    data, gdq, pdq = setup()
    with pytest.raises(ValueError, match=r"expected \(7, 7\), found \(7, 8\)"):
        flag_saturation(data, gdq, pdq, np.zeros((7, 8)))
    with pytest.raises(ValueError, match="groupdq shape mismatch"):
        flag_saturation(data, gdq[:, :2], pdq, np.zeros((7, 7)))
    with pytest.raises(ValueError, match="4-D"):
        flag_saturation(data[0], gdq[0], pdq, np.zeros((7, 7)))
