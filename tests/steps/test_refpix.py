"""Reference-pixel correction: injected amplifier offsets and row-correlated (1/f) drifts."""
import numpy as np
import pytest

from steps.refpix.reference_pixels import clipped_mean, correct_miri, correct_nir

REFERENCE_PIXEL = np.uint32(1 << 31)


def nir_scene(full=256, ngroups=3, nints=1, seed=0, noise=1.0):
    """Signal + per-group/amp/parity offsets + smooth row drift + white noise."""
    rng = np.random.default_rng(seed)
    amp_w = full // 4
    sig = rng.uniform(0, 500, (full, full))
    sig[:4] = sig[-4:] = 0.0
    sig[:, :4] = sig[:, -4:] = 0.0
    truth = np.broadcast_to(sig, (nints, ngroups, full, full)).astype(np.float32)
    offs = rng.uniform(-80, 80, (nints, ngroups, 4, 2))
    X = np.arange(full)
    col_off = offs[:, :, X // amp_w, X % 2]  # (nints, ngroups, nx)
    y = np.arange(full)
    drift = np.empty((nints, ngroups, full))
    for i in range(nints):
        for g in range(ngroups):
            ph = rng.uniform(0, 2 * np.pi, 3)
            drift[i, g] = (15 * np.sin(2 * np.pi * y / 180 + ph[0])
                           + 8 * np.sin(2 * np.pi * y / 97 + ph[1])
                           + 4 * np.sin(2 * np.pi * y / 61 + ph[2]))
    structure = col_off[:, :, None, :] + drift[:, :, :, None]
    data = (truth + structure + rng.normal(0, noise, truth.shape)).astype(np.float32)
    return data, truth, structure


def test_clipped_mean_rejects_outliers():
    v = np.concatenate([np.random.default_rng(1).normal(10, 1, 1000), [1e4, -1e4, np.nan]])
    assert clipped_mean(v) == pytest.approx(10, abs=0.1)
    assert clipped_mean([]) == 0.0


def test_nir_full_frame_removes_offsets_and_row_drift():
    data, truth, structure = nir_scene()
    noisy = data - truth - structure  # the white noise
    info = correct_nir(data, np.zeros((256, 256), np.uint32), full_shape=(256, 256))
    assert info["applied"] and info["top_bottom"] and info["side"] and info["noutputs"] == 4
    resid = (data - truth - noisy)[..., 4:-4, 4:-4]
    rms_in = np.sqrt(np.mean((structure - structure.mean()) ** 2))
    rms_out = np.sqrt(np.mean((resid - resid.mean()) ** 2))
    assert rms_out < 0.1 * rms_in, (rms_out, rms_in)
    assert abs(resid.mean()) < 1.0


def test_nir_top_bottom_only_recovers_amp_offsets_exactly():
    data, truth, structure = nir_scene(noise=0.0)
    # remove the drift so top/bottom alone must give the exact offsets
    rng = np.random.default_rng(5)
    off = rng.uniform(-50, 50, (1, 3, 4, 2))
    X = np.arange(256)
    data = (truth + off[:, :, X // 64, X % 2][:, :, None, :]).astype(np.float32)
    correct_nir(data, full_shape=(256, 256), use_side_ref_pixels=False)
    np.testing.assert_allclose(data, truth, atol=1e-3)


def test_nir_do_not_use_refpix_excluded():
    data = np.zeros((1, 1, 64, 64), np.float32)
    data[:] = 7.0
    data[0, 0, 0, 10] = 1e6  # bad reference pixel
    pdq = np.zeros((64, 64), np.uint32)
    pdq[0, 10] = 1
    correct_nir(data, pdq, full_shape=(64, 64), use_side_ref_pixels=False)
    np.testing.assert_allclose(data[0, 0, 4:-4, :], 0.0, atol=1e-4)


def test_nir_subarray_one_output_odd_even():
    # 32x32 subarray at the bottom-left corner: 4 reference rows and 4 reference columns
    data = np.zeros((2, 2, 32, 32), np.float32)
    even, odd = 12.0, -3.0
    data[..., 0::2] += even
    data[..., 1::2] += odd
    data += 100.0 * (np.arange(32)[None, None, :, None] >= 4) * (np.arange(32) >= 4)
    info = correct_nir(data, xstart=1, ystart=1, full_shape=(2048, 2048))
    assert info["noutputs"] == 1 and not info["side"]
    expect = 100.0 * (np.arange(32)[:, None] >= 4) * (np.arange(32)[None, :] >= 4)
    np.testing.assert_allclose(data, np.broadcast_to(expect, data.shape), atol=1e-4)


def test_nir_subarray_without_reference_pixels_is_skipped():
    data = np.random.default_rng(2).normal(0, 1, (1, 2, 16, 16)).astype(np.float32)
    before = data.copy()
    info = correct_nir(data, xstart=101, ystart=201, full_shape=(2048, 2048))
    assert not info["applied"] and "no reference pixels" in info["reason"]
    np.testing.assert_array_equal(data, before)


def test_nir_subarray_reference_pixels_from_dq():
    data = np.full((1, 1, 16, 16), 5.0, np.float32)
    pdq = np.zeros((16, 16), np.uint32)
    pdq[0, :] = REFERENCE_PIXEL
    info = correct_nir(data, pdq, xstart=101, ystart=201, full_shape=(2048, 2048))
    assert info["applied"]
    np.testing.assert_allclose(data, 0.0, atol=1e-5)


def test_nir_fastaxis_2_transposes_amplifiers():
    # amplifiers run along DMS y when |FASTAXIS| == 2
    rng = np.random.default_rng(4)
    off = rng.uniform(-50, 50, (4, 2))
    Y = np.arange(128)
    data = np.broadcast_to(off[Y // 32, Y % 2][:, None], (1, 1, 128, 128)).astype(np.float32)
    data = np.ascontiguousarray(data)
    correct_nir(data, full_shape=(128, 128), fastaxis=2, slowaxis=1, use_side_ref_pixels=False)
    np.testing.assert_allclose(data, 0.0, atol=1e-4)


def test_nir_wrong_shapes():
    data = np.zeros((1, 1, 16, 16), np.float32)
    with pytest.raises(ValueError, match=r"expected \(16, 16\), found \(16, 15\)"):
        correct_nir(data, np.zeros((16, 15), np.uint32))
    with pytest.raises(ValueError, match="does not fit"):
        correct_nir(data, xstart=2040, ystart=1, full_shape=(2048, 2048))


def test_miri_removes_per_amplifier_odd_even_row_drifts():
    rng = np.random.default_rng(3)
    nints, ngroups, ny, nx = 2, 4, 128, 136  # a small 'full frame' (MIRI is 1024 x 1032)
    truth = np.broadcast_to(rng.uniform(0, 300, (ny, nx)), (nints, ngroups, ny, nx))
    truth = np.ascontiguousarray(truth, dtype=np.float32)
    truth[..., :4] = truth[..., -4:] = 0.0
    off = rng.uniform(-20, 20, (nints, ngroups, 4, 2))
    off[:, 0] = 0.0  # jwst: offsets are measured relative to the first group
    X, Y = np.arange(nx), np.arange(ny)
    inj = off[:, :, X[None, :] % 4, Y[:, None] % 2]
    data = (truth + inj + rng.normal(0, 0.5, truth.shape)).astype(np.float32)
    noise = data - truth - inj
    info = correct_miri(data, full_shape=(ny, nx))
    assert info["applied"]
    resid = data - truth - noise
    assert np.sqrt(np.mean(resid**2)) < 0.1 * np.sqrt(np.mean(inj**2))


def test_miri_subarray_skipped():
    data = np.ones((1, 3, 64, 72), np.float32)
    info = correct_miri(data)
    assert not info["applied"] and (data == 1).all()
