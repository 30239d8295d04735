"""Tests of steps.jump.twopoint.detect_jumps against injected cosmic rays."""
import numpy as np
import pytest

from steps.jump.twopoint import detect_jumps
from tests.steps.synthetic_ramps import make_ramps

DNU, SAT, JUMP = 1, 2, 4
GAIN, RN, TG = 2.0, 12.0, 10.0


def _rates(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return 10 ** rng.uniform(-1, 2.5, size=(n, n))  # 0.1 .. 300 DN/s


def _sigma_dn(rate):
    """Noise of one group difference, DN (Poisson + CDS read noise)."""
    return np.sqrt(rate * TG * GAIN + (RN * GAIN) ** 2) / GAIN


def _neighbourhood(mask):
    """``mask`` grown by the 4-neighbours in the image plane (last two axes)."""
    out = mask.copy()
    out[..., 1:, :] |= mask[..., :-1, :]
    out[..., :-1, :] |= mask[..., 1:, :]
    out[..., :, 1:] |= mask[..., :, :-1]
    out[..., :, :-1] |= mask[..., :, 1:]
    return out


@pytest.mark.parametrize("nints,ngroups", [(1, 10), (5, 10), (1, 20)])
def test_detection_and_false_flag_rates(nints, ngroups):
    s = make_ramps(_rates(), nints=nints, ngroups=ngroups, gain=GAIN, readnoise=RN, tgroup=TG,
                   cr_fraction=0.1, cr_amp_range=(10.0, 3000.0), seed=100 + nints + ngroups)
    gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise, nframes=1)
    flagged = (gdq & JUMP) > 0
    # cosmic rays above 10 sigma: >= 99 % flagged, on the group where they arrived
    strong = s.cr_mask & (s.cr_amp > 10 * _sigma_dn(s.rate))
    assert strong.sum() > 200
    assert flagged[strong].mean() >= 0.99, flagged[strong].mean()
    # clean pixel-groups (no CR there or in a 4-neighbour of that group): <= 0.1 % flagged
    clean = ~_neighbourhood(s.cr_mask)
    clean[:, 0] = False  # group 0 can never be flagged
    assert flagged[clean].mean() <= 0.001, flagged[clean].mean()
    # input not modified, other flags preserved
    assert not (s.groupdq & JUMP).any()
    assert ((gdq & ~np.uint8(JUMP)) == s.groupdq).all()


def test_no_cosmic_rays_no_flags_iterative_and_single_pass():
    for ngroups in (6, 15):  # 5 differences (iterative) and 14 (single pass)
        s = make_ramps(_rates(32), nints=1, ngroups=ngroups, gain=GAIN, readnoise=RN, tgroup=TG, seed=ngroups)
        gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise)
        assert ((gdq & JUMP) > 0).mean() <= 0.001


def test_too_few_groups_returns_input():
    s = make_ramps(_rates(8), nints=1, ngroups=2, cr_fraction=1.0, seed=1)
    gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise)
    np.testing.assert_array_equal(gdq, s.groupdq)


def _flat(ngroups=8, n=7, value=5.0):
    """Noise-free flat ramps, n x n pixels, 5 DN/s."""
    t = (np.arange(ngroups) + 1) * TG
    data = np.broadcast_to((value * t)[None, :, None, None], (1, ngroups, n, n)).astype(np.float32).copy()
    return data, np.zeros(data.shape, np.uint8), np.full((n, n), GAIN, np.float32), np.full((n, n), RN, np.float32)


def test_neighbours_flagged_between_limits():
    data, gdq, gain, rn = _flat()
    sigma_dn = np.sqrt(5.0 * TG * GAIN + (RN * GAIN) ** 2) / GAIN  # ~13.9 DN
    data[0, 4:, 3, 3] += 50 * sigma_dn   # a 50-sigma jump in group 4 of the centre pixel
    out = detect_jumps(data, gdq, gain, rn)
    j = (out[0] & JUMP) > 0
    assert j[4, 3, 3] and j[4, 2, 3] and j[4, 4, 3] and j[4, 3, 2] and j[4, 3, 4]
    assert j[4].sum() == 5 and j.sum() == 5       # not the diagonals, not other groups
    # neighbours not flagged when disabled, or when the jump is above max_jump_to_flag_neighbors
    assert ((detect_jumps(data, gdq, gain, rn, flag_4_neighbors=False)[0] & JUMP) > 0).sum() == 1
    assert ((detect_jumps(data, gdq, gain, rn, max_jump_to_flag_neighbors=40.0)[0] & JUMP) > 0).sum() == 1
    # a saturated neighbour group is not flagged
    gdq[0, 4:, 2, 3] = SAT | DNU
    out = detect_jumps(data, gdq, gain, rn)
    assert not (out[0, 4, 2, 3] & JUMP) and ((out[0] & JUMP) > 0).sum() == 4


def test_after_jump_flagging():
    data, gdq, gain, rn = _flat(ngroups=10)
    data[0, 3:, 3, 3] += 2000.0  # jump in group 3
    kw = dict(flag_4_neighbors=False, tgroup=TG)
    base = (detect_jumps(data, gdq, gain, rn, **kw)[0, :, 3, 3] & JUMP) > 0
    assert base.tolist() == [False, False, False, True] + [False] * 6
    # jumps >= 1000 DN: flag the groups within 25 s (2 groups) after
    out = (detect_jumps(data, gdq, gain, rn, after_jump_flag_dn1=1000.0, after_jump_flag_time1=25.0, **kw)[0, :, 3, 3] & JUMP) > 0
    assert out.tolist() == [False, False, False, True, True, True] + [False] * 4
    # below the DN threshold: nothing more
    out = (detect_jumps(data, gdq, gain, rn, after_jump_flag_dn1=5000.0, after_jump_flag_time1=25.0, **kw)[0, :, 3, 3] & JUMP) > 0
    assert out.tolist() == base.tolist()


def test_saturated_and_do_not_use_groups_ignored():
    data, gdq, gain, rn = _flat(ngroups=10)
    data[0, 6:, 3, 3] = 65000.0      # a jump into saturation
    gdq[0, 6:, 3, 3] = SAT           # flagged SATURATED only (excluded all the same)
    data[0, 2, 1, 1] += 3000.0       # a DO_NOT_USE group with a wild value
    gdq[0, 2, 1, 1] = DNU
    out = detect_jumps(data, gdq, gain, rn, flag_4_neighbors=False)
    assert not (out & JUMP).any()


def test_iterative_small_counts_thresholds():
    # 3 groups = 2 differences: the threshold is three_group_rejection_threshold (6 sigma)
    data, gdq, gain, rn = _flat(ngroups=3, n=1)
    s = np.sqrt(5.0 * TG * GAIN + (RN * GAIN) ** 2) / GAIN
    data[0, 2:, 0, 0] += 8 * s
    assert (detect_jumps(data, gdq, gain, rn)[0, 2, 0, 0] & JUMP)
    assert not (detect_jumps(data, gdq, gain, rn, three_group_rejection_threshold=50.0)[0, 2, 0, 0] & JUMP)


def test_sigma_clipping_across_integrations():
    s = make_ramps(np.full((8, 8), 20.0), nints=40, ngroups=4, gain=GAIN, readnoise=RN, tgroup=TG, seed=9)
    s.data[7, 2:, 4, 4] += 500.0
    gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise, minimum_sigclip_groups=30, flag_4_neighbors=False)
    assert gdq[7, 2, 4, 4] & JUMP
    assert ((gdq & JUMP) > 0).mean() < 0.002


def test_cores_bit_identical():
    s = make_ramps(_rates(48), nints=2, ngroups=8, gain=GAIN, readnoise=RN, tgroup=TG, cr_fraction=0.3,
                   cr_amp_range=(20.0, 30000.0), seed=4)
    kw = dict(after_jump_flag_dn1=100.0, after_jump_flag_time1=20.0, tgroup=TG)
    a = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise, maximum_cores=1, **kw)
    b = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise, maximum_cores="all", **kw)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_detection_rates_large():
    s = make_ramps(_rates(256), nints=2, ngroups=40, gain=GAIN, readnoise=RN, tgroup=TG / 4,
                   cr_fraction=0.05, cr_amp_range=(10.0, 3000.0), seed=77)
    gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise)
    flagged = (gdq & JUMP) > 0
    sig = np.sqrt(s.rate * TG / 4 * GAIN + (RN * GAIN) ** 2) / GAIN
    strong = s.cr_mask & (s.cr_amp > 10 * sig)
    assert flagged[strong].mean() >= 0.99
    clean = ~_neighbourhood(s.cr_mask)
    clean[:, 0] = False
    assert flagged[clean].mean() <= 0.001


def _ramp_product(data, gdq, **keys):
    from astropy.io import fits

    from runner import Product

    meta = fits.Header()
    meta.update({"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "EXP_TYPE": "NRC_IMAGE", "NFRAMES": 1,
                 "GROUPGAP": 0, "TGROUP": TG, "TFRAME": TG, "SUBSTRT1": 1, "SUBSTRT2": 1,
                 "SUBSIZE1": data.shape[-1], "SUBSIZE2": data.shape[-2], "SUBARRAY": "FULL"})
    meta.update(keys)
    return Product("ramp", meta, {"SCI": data, "GROUPDQ": gdq,
                                  "PIXELDQ": np.zeros(data.shape[-2:], np.uint32)}, filename="t_uncal.fits")


def _write_ref(tmp_path, reftype, value, shape):
    from astropy.io import fits

    hdr = fits.Header()
    hdr.update({"REFTYPE": reftype.upper(), "TELESCOP": "JWST", "SUBSTRT1": 1, "SUBSTRT2": 1,
                "SUBSIZE1": shape[1], "SUBSIZE2": shape[0], "INSTRUME": "NIRCAM"})
    path = tmp_path / f"{reftype}.fits"
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(np.asarray(value, np.float32), name="SCI")]).writeto(path)
    return str(path)


def test_jump_step(tmp_path):
    from steps.jump.step import JumpStep

    s = make_ramps(_rates(16), nints=1, ngroups=8, gain=GAIN, readnoise=RN, tgroup=TG, cr_fraction=0.2,
                   cr_amp_range=(1000.0, 2000.0), seed=8)
    gain = s.gain.copy()
    gain[0, 0] = 0.0
    refs = {"gain": _write_ref(tmp_path, "gain", gain, gain.shape),
            "readnoise": _write_ref(tmp_path, "readnoise", s.readnoise, gain.shape)}
    step = JumpStep(references=refs, rejection_threshold=4.0, maximum_cores="all")
    out = step.process(_ramp_product(s.data.copy(), s.groupdq.copy()))
    expect = detect_jumps(s.data, s.groupdq, gain, s.readnoise)
    np.testing.assert_array_equal(out.groupdq, expect)
    assert (out.groupdq[s.cr_mask] & JUMP).all()
    assert out.pixeldq[0, 0] == (1 | (1 << 19)) and (out.pixeldq.ravel()[1:] == 0).all()
    assert JumpStep.parameter_model()().expand_large_events is False


# --- multi-frame groups: hits arriving between the frames of a group (flag_split_jumps) -------

def _two_frame_ramps(rate, ngroups, *, nframes=2, hit_fraction=0.0, amp_sigma=(10.0, 300.0),
                     split_only=False, seed=0):
    """Frame-level ramps with ``nframes``-frame groups (no gap) and at most one hit per pixel.

    Each frame integrates Poisson electrons and has read noise ``RN / sqrt(2)``; a group is the
    mean of its frames. A hit arrives before a uniformly drawn frame of groups 1..n-1 (only
    after the first frame of a group with ``split_only``), its charge given in units of the
    noise of one group difference (``_sigma2``) times the *fraction inside the hit group*.

    Returns
    -------
    data : float32 (1, ngroups, ny, nx), DN
    hit_group, hit_frame : int (ny, nx); -1 where no hit
    amp_in_group : float (ny, nx)
        Charge inside the hit group, DN (the part in difference k-1 -> k).
    """
    rng = np.random.default_rng(seed)
    rate = np.asarray(rate, float)
    ny, nx = rate.shape
    nfr = ngroups * nframes
    tframe = TG / nframes
    e = np.cumsum(rng.poisson(rate * GAIN * tframe, size=(nfr, ny, nx)), axis=0) / GAIN
    hit = rng.random((ny, nx)) < hit_fraction
    grp = rng.integers(1, ngroups, size=(ny, nx))
    sub = rng.integers(1 if split_only else 0, nframes, size=(ny, nx))
    frame = np.where(hit, grp * nframes + sub, -1)
    frac = (nframes - sub) / nframes
    sig = _sigma2(rate, nframes)
    amp_in_group = np.where(hit, rng.uniform(*amp_sigma, size=(ny, nx)) * sig, 0.0)
    charge = np.where(hit, amp_in_group / frac, 0.0)
    f = np.arange(nfr)[:, None, None]
    frames = e + np.where((frame >= 0) & (f >= frame), charge, 0.0)
    frames += rng.normal(0.0, RN / np.sqrt(2.0), size=frames.shape)
    data = frames.reshape(ngroups, nframes, ny, nx).mean(axis=1)[None].astype(np.float32)
    return data, np.where(hit, grp, -1), np.where(hit, sub, -1), amp_in_group


def _sigma2(rate, nframes):
    """Noise of one difference of ``nframes``-frame groups, DN (as the detector assumes)."""
    return np.sqrt(rate * TG / GAIN + RN ** 2 / nframes)


@pytest.mark.parametrize("ngroups", [4, 6, 12])
def test_split_hit_flags_both_groups(ngroups):
    """Noise-free 2-frame ramps: a hit in the second frame of group 2 puts half its charge in
    differences 1->2 and 2->3; both groups 2 and 3 are flagged, nothing else."""
    data, gdq, gain, rn = _flat(ngroups=ngroups, n=5)
    sig = float(_sigma2(5.0, 2))
    data[0, 2, 2, 2] += 15 * sig          # half of a 30-sigma hit
    data[0, 3:, 2, 2] += 30 * sig
    out = detect_jumps(data, gdq, gain, rn, nframes=2, flag_4_neighbors=False)
    j = (out[0] & JUMP) > 0
    assert j[:, 2, 2].tolist() == [g in (2, 3) for g in range(ngroups)]
    assert j.sum() == 2
    # the same hit in the first frame of group 2: all of it in 1->2, group 3 stays clean
    data, gdq, gain, rn = _flat(ngroups=ngroups, n=5)
    data[0, 2:, 2, 2] += 30 * sig
    j = (detect_jumps(data, gdq, gain, rn, nframes=2, flag_4_neighbors=False)[0] & JUMP) > 0
    assert j[:, 2, 2].tolist() == [g == 2 for g in range(ngroups)] and j.sum() == 1


def test_split_hit_with_three_differences_reference_misses_it():
    """4 usable groups (3 differences), hit in the second frame of group 1: differences 0->1
    and 1->2 hold half the charge each. The reference's iterative search takes their value as
    the median and flags the clean difference 2->3 (group 3) instead; the split test flags
    groups 1 and 2."""
    data, gdq, gain, rn = _flat(ngroups=6, n=5)
    sig = float(_sigma2(5.0, 2))
    data[0, 1, 2, 2] += 20 * sig
    data[0, 2:, 2, 2] += 40 * sig
    gdq[0, 4:, 2, 2] = SAT                 # groups 4, 5 saturated: 0..3 usable
    kw = dict(nframes=2, flag_4_neighbors=False)
    on = (detect_jumps(data, gdq, gain, rn, **kw)[0, :, 2, 2] & JUMP) > 0
    off = (detect_jumps(data, gdq, gain, rn, flag_split_jumps=False, **kw)[0, :, 2, 2] & JUMP) > 0
    assert on.tolist() == [False, True, True, False, False, False]
    assert off.tolist() == [False, False, False, True, False, False]
    # only single-frame groups are concerned: nframes=1 gives the reference's flags
    one = detect_jumps(data, gdq, gain, rn, nframes=1, flag_4_neighbors=False)
    np.testing.assert_array_equal(one, detect_jumps(data, gdq, gain, rn, nframes=1, flag_split_jumps=False,
                                                    flag_4_neighbors=False))


@pytest.mark.parametrize("ngroups", [4, 6, 12])
def test_split_hits_detection_and_false_flag_rates(ngroups):
    """Noisy 2-frame ramps, 0.1 .. 300 DN/s: hits whose charge inside their group exceeds 10
    sigma are flagged there >= 99 % (and the next group too, for hits split between its
    frames); clean pixel-groups (no hit in the pixel or a 4-neighbour) <= 0.1 % flagged."""
    rate = _rates(96, seed=ngroups)
    data, hg, hf, amp = _two_frame_ramps(rate, ngroups, hit_fraction=0.15, seed=ngroups)
    gdq0 = np.zeros(data.shape, np.uint8)
    g = np.full(rate.shape, GAIN, np.float32)
    r = np.full(rate.shape, RN, np.float32)
    out = detect_jumps(data, gdq0, g, r, nframes=2)
    j = (out[0] & JUMP) > 0
    yy, xx = np.nonzero(hg >= 0)
    k = hg[yy, xx]
    strong = amp[yy, xx] > 10 * _sigma2(rate[yy, xx], 2)
    split = hf[yy, xx] > 0
    sel = strong
    assert sel.sum() > 100
    assert j[k[sel], yy[sel], xx[sel]].mean() >= 0.99, j[k[sel], yy[sel], xx[sel]].mean()
    s2 = sel & split & (k < ngroups - 1)
    assert s2.sum() > 50
    assert j[k[s2] + 1, yy[s2], xx[s2]].mean() >= 0.99
    hitmap = _neighbourhood((hg >= 0)[None])[0]
    clean = np.broadcast_to(~hitmap, j.shape).copy()
    clean[0] = False
    rate_on = j[clean].mean()
    assert rate_on <= 0.001, rate_on
    # no clean pixel-group flagged by the split test that the reference would not flag
    ref = (detect_jumps(data, gdq0, g, r, nframes=2, flag_split_jumps=False)[0] & JUMP) > 0
    assert (j & ~ref)[clean].mean() <= 2e-4, (j & ~ref)[clean].mean()


def test_split_hits_with_few_groups_beat_the_reference():
    """3 differences (4 groups): the reference misses hits split in the second frame of groups
    1 and 2 (both contaminated differences make the median); the split test finds them."""
    rate = _rates(96, seed=5)
    data, hg, hf, amp = _two_frame_ramps(rate, 4, hit_fraction=0.3, split_only=True,
                                         amp_sigma=(10.0, 100.0), seed=5)
    gdq0 = np.zeros(data.shape, np.uint8)
    g = np.full(rate.shape, GAIN, np.float32)
    r = np.full(rate.shape, RN, np.float32)
    yy, xx = np.nonzero((hg >= 1) & (hg <= 2))
    k = hg[yy, xx]
    assert yy.size > 500
    on = (detect_jumps(data, gdq0, g, r, nframes=2)[0] & JUMP) > 0
    off = (detect_jumps(data, gdq0, g, r, nframes=2, flag_split_jumps=False)[0] & JUMP) > 0
    both_on = on[k, yy, xx] & on[k + 1, yy, xx]
    assert both_on.mean() >= 0.99, both_on.mean()
    assert off[k, yy, xx].mean() < 0.5, off[k, yy, xx].mean()


@pytest.mark.parametrize("nframes", [2, 4])
def test_split_hits_moderate_amplitudes_single_pass(nframes):
    """Many differences (single pass): hits split evenly between two differences, each half
    below the 4-sigma single-difference threshold (3.5 sigma), are found by the two-group
    difference; the reference finds few of them."""
    rate = _rates(96, seed=11)
    ngroups = 14
    data, hg, hf, amp = _two_frame_ramps(rate, ngroups, nframes=nframes, hit_fraction=0.3,
                                         amp_sigma=(3.5, 3.5), split_only=True, seed=11)
    # keep the even splits (frame nframes/2 of the group): halves of equal size
    even = hf == nframes // 2
    gdq0 = np.zeros(data.shape, np.uint8)
    g = np.full(rate.shape, GAIN, np.float32)
    r = np.full(rate.shape, RN, np.float32)
    yy, xx = np.nonzero(even & (hg >= 1) & (hg <= ngroups - 2))
    k = hg[yy, xx]
    on = (detect_jumps(data, gdq0, g, r, nframes=nframes)[0] & JUMP) > 0
    off = (detect_jumps(data, gdq0, g, r, nframes=nframes, flag_split_jumps=False)[0] & JUMP) > 0
    f_on = (on[k, yy, xx] & on[k + 1, yy, xx]).mean()
    f_off = (off[k, yy, xx] & off[k + 1, yy, xx]).mean()
    assert f_on > 0.5 and f_off < 0.15, (f_on, f_off)


def test_split_cores_bit_identical():
    rate = _rates(48, seed=3)
    data, *_ = _two_frame_ramps(rate, 6, hit_fraction=0.3, seed=3)
    gdq0 = np.zeros(data.shape, np.uint8)
    g = np.full(rate.shape, GAIN, np.float32)
    r = np.full(rate.shape, RN, np.float32)
    a = detect_jumps(data, gdq0, g, r, nframes=2, maximum_cores=1)
    b = detect_jumps(data, gdq0, g, r, nframes=2, maximum_cores="all")
    np.testing.assert_array_equal(a, b)


def test_jump_step_split_hits_use_nframes(tmp_path):
    """The step reads NFRAMES from the product and passes flag_split_jumps on."""
    from steps.jump.step import JumpStep

    data, gdq, gain, rn = _flat(ngroups=6, n=5)
    sig = float(_sigma2(5.0, 2))
    data[0, 1, 2, 2] += 20 * sig           # split hit in the second frame of group 1
    data[0, 2:, 2, 2] += 40 * sig
    gdq[0, 4:, 2, 2] = SAT
    refs = {"gain": _write_ref(tmp_path, "gain", gain, gain.shape),
            "readnoise": _write_ref(tmp_path, "readnoise", rn, gain.shape)}
    got = {}
    for split in (True, False):
        step = JumpStep(references=refs, flag_split_jumps=split, flag_4_neighbors=False)
        out = step.process(_ramp_product(data.copy(), gdq.copy(), NFRAMES=2, TFRAME=TG / 2))
        got[split] = (out.groupdq[0, :, 2, 2] & JUMP) > 0
    assert got[True].tolist() == [False, True, True, False, False, False]
    assert got[False].tolist() == [False, False, False, True, False, False]
