"""Snowball (near-IR) and shower (MIRI) flagging, steps.jump.large_events, against injected events."""
import numpy as np
import pytest

from steps.jump.large_events import flag_showers, flag_snowballs, ring_kernel
from steps.jump.twopoint import detect_jumps
from tests.steps.synthetic_ramps import make_ramps

DNU, SAT, JUMP = 1, 2, 4

# near-IR: gain 2 e/DN, CDS read noise 12 DN, 10 s groups
NIR = dict(gain=2.0, readnoise=12.0, tgroup=10.0)
# MIRI-like: gain 4 e/DN, CDS read noise 10 DN, FASTR1 groups of 2.775 s
MIRI = dict(gain=4.0, readnoise=10.0, tgroup=2.775)


def _snowball(n, R, *, rc=4.0, H=150.0, g0=5, ngroups=10, nints=1, axis_ratio=1.0, seed=1):
    """Ramps with a snowball in group ``g0`` of integration 0, centred in an n x n frame.

    Saturated core of radius ``rc`` (SATURATED from ``g0`` on, as the saturation step sets it) and
    a halo whose charge falls linearly from ``H`` DN at the core to 0 at radius ``R`` (pixels;
    ``axis_ratio`` < 1 squeezes it in y). Returns (ramps, radius map, halo charge DN, core mask).
    """
    s = make_ramps(np.full((n, n), 1.0), nints=nints, ngroups=ngroups, seed=seed, **NIR)
    yy, xx = np.mgrid[:n, :n]
    c = (n - 1) / 2.0
    r = np.hypot((yy - c) / axis_ratio, xx - c)
    halo = np.where(r < R, H * (R - r) / (R - rc), 0.0)
    core = r <= rc
    halo[core] = 0.0
    s.data[0, g0:] += halo.astype(np.float32)
    s.data[0, g0:, core] += np.float32(1e5)
    s.groupdq[0, g0:, core] |= SAT
    return s, r, halo, core


def _jumps(s):
    return detect_jumps(s.data, s.groupdq, s.gain, s.readnoise)


@pytest.mark.parametrize("R,use_ellipses,axis_ratio", [(25.0, False, 1.0), (40.0, True, 0.7)])
def test_snowball_halo_flagged_and_local(R, use_ellipses, axis_ratio):
    n = int(4 * R + 40)
    s, r, halo, core = _snowball(n, R, axis_ratio=axis_ratio)
    base = _jumps(s)
    base_copy = base.copy()
    gdq, nsnow = flag_snowballs(base, use_ellipses=use_ellipses, tgroup=NIR["tgroup"])
    assert nsnow == 1
    bright = (~core) & (halo > 3 * NIR["readnoise"])   # halo charge above 3x read noise
    flagged_base = ((base[0, 5] & (JUMP | SAT)) > 0)[bright].mean()
    flagged = ((gdq[0, 5] & (JUMP | SAT)) > 0)[bright].mean()
    assert flagged_base < 0.9, flagged_base        # two-point alone misses the faint halo
    assert flagged >= 0.95, flagged
    # flags stay local: nothing added beyond twice the halo radius, in any group
    added = ((gdq & (JUMP | SAT)) > 0) & ~((base & (JUMP | SAT)) > 0)
    assert not added[..., r > 2 * R].any()
    # only group 5 got new jump flags; the input is not modified
    assert not (added[0, :5].any() or (added[0, 6:] & ((gdq[0, 6:] & JUMP) > 0)).any())
    np.testing.assert_array_equal(base, base_copy)
    # flags are only added, except JUMP giving way to SATURATED where the core was extended
    lost = base & ~gdq
    assert not (lost & ~np.uint8(JUMP)).any() and (gdq[lost > 0] & SAT).all()


def test_snowball_saturation_extended_and_next_integration():
    s, r, halo, core = _snowball(140, 25.0, nints=2, ngroups=8)
    base = _jumps(s)
    gdq, nsnow = flag_snowballs(base, sat_expand=2, tgroup=NIR["tgroup"],
                                snowball_time_masked_next_int=40)  # 4 groups -> groups 1..3
    assert nsnow == 1
    # saturation grows by sat_expand (2) pixels of radius, in group 5 and every later group
    ring = (r > 4.0 + 0.5) & (r <= 4.0 + 1.9)
    for g in range(5, 8):
        assert ((gdq[0, g] & SAT) > 0)[ring].all()
        assert not ((gdq[0, g] & JUMP) > 0)[ring].any()
    assert not ((gdq[0, 5] & SAT) > 0)[r > 4.0 + 2.6].any()
    assert not ((gdq[0, :5] & SAT) > 0).any()
    # the core (not its extension) is flagged JUMP in groups 1..3 of the next integration
    nxt = (gdq[1] & JUMP) > 0
    assert nxt[1:4][:, core].all() and not nxt[0][core].any() and not nxt[4:][:, core].any()
    assert not (nxt[1:4] & ~((base[1, 1:4] & JUMP) > 0))[:, r > 4.0 + 1.0].any()
    # without the option the next integration is untouched
    gdq2, _ = flag_snowballs(base, mask_snowball_core_next_int=False, tgroup=NIR["tgroup"])
    np.testing.assert_array_equal(gdq2[1], base[1])


def test_snowball_needs_a_saturated_core():
    """A large jump region without saturation (away from the edges) is not a snowball."""
    s, r, halo, core = _snowball(140, 25.0)
    s.groupdq[0, 5:, core] = 0
    s.data[0, 5:, core] -= np.float32(1e5 - 300.0)   # a bright but unsaturated centre
    base = _jumps(s)
    gdq, nsnow = flag_snowballs(base, tgroup=NIR["tgroup"])
    assert nsnow == 0
    np.testing.assert_array_equal(gdq, base)
    gdq, nsnow = flag_snowballs(base, sat_required_snowball=False, tgroup=NIR["tgroup"])
    assert nsnow == 1 and ((gdq & JUMP) > (base & JUMP)).sum() > 100


def test_clean_data_adds_almost_no_flags():
    """Ordinary cosmic rays and a star saturating gradually: <= 0.1 % flags added by either option."""
    n = 160
    yy, xx = np.mgrid[:n, :n]
    rate = 2.0 + 3000.0 * np.exp(-((yy - 70.0) ** 2 + (xx - 90.0) ** 2) / (2 * 3.0 ** 2))
    s = make_ramps(rate, nints=2, ngroups=10, cr_fraction=0.01, cr_amp_range=(50.0, 3000.0),
                   saturation=20000.0, seed=5, **NIR)
    assert (s.groupdq & SAT).any()
    base = _jumps(s)
    snow, _ = flag_snowballs(base, tgroup=NIR["tgroup"])
    assert ((snow != base).mean()) <= 0.001
    assert not ((snow & SAT) > (base & SAT)).any()   # the star's saturation is not grown

    m = make_ramps(np.full((128, 128), 5.0), nints=1, ngroups=20, cr_fraction=0.005,
                   cr_amp_range=(50.0, 2000.0), seed=6, **MIRI)
    base = _jumps(m)
    show, nshow = flag_showers(m.data, base, m.gain, m.readnoise, tgroup=MIRI["tgroup"])
    assert nshow == 0 and (show != base).mean() <= 0.001


def _shower(n=160, R=18.0, amp_sigma=2.0, g0=8, ngroups=20, seed=3):
    """MIRI-like ramps with a diffuse event of ``amp_sigma`` x the difference noise in group g0."""
    rate = 5.0
    s = make_ramps(np.full((n, n), rate), nints=1, ngroups=ngroups, seed=seed, **MIRI)
    g, rn, tg = MIRI["gain"], MIRI["readnoise"], MIRI["tgroup"]
    sigma = np.sqrt(rate * tg * g + (rn * g) ** 2) / g   # one difference, DN
    yy, xx = np.mgrid[:n, :n]
    c = (n - 1) / 2.0
    r = np.hypot((yy - c) / 0.8, xx - c)
    inside = r <= R
    s.data[0, g0:, inside] += np.float32(amp_sigma * sigma)
    return s, r, inside


def test_shower_found_and_flagged():
    R = 18.0
    s, r, inside = _shower(R=R)
    assert inside.sum() > 500                           # hundreds of pixels, each 2 sigma (< 4)
    base = _jumps(s)
    gdq, nshow = flag_showers(s.data, base, s.gain, s.readnoise, tgroup=MIRI["tgroup"])
    assert nshow == 1
    frac_base = ((base[0, 8] & JUMP) > 0)[inside].mean()
    frac = ((gdq[0, 8] & JUMP) > 0)[inside].mean()
    assert frac_base < 0.2, frac_base                   # two-point alone finds few of them
    assert frac >= 0.95, frac
    # the next int(15 s // 2.775 s) = 5 groups are flagged too, not the groups before or after
    nafter = int(15.0 // MIRI["tgroup"])
    per_group = [((gdq[0, k] & JUMP) > 0)[inside].mean() for k in range(20)]
    assert min(per_group[8:9 + nafter]) >= 0.95
    assert max(per_group[:8] + per_group[9 + nafter:]) < 0.05
    added = ((gdq & JUMP) > 0) & ~((base & JUMP) > 0)
    assert not added[..., r > 1.5 * R].any()
    # a tiny max_shower_amplitude undoes the shower flags (they change the rates too much)
    capped, _ = flag_showers(s.data, base, s.gain, s.readnoise, tgroup=MIRI["tgroup"],
                             max_shower_amplitude=1e-3)
    np.testing.assert_array_equal(capped, base)


def test_ring_kernel_matches_astropy():
    conv = pytest.importorskip("astropy.convolution")
    k = conv.Ring2DKernel(1.0, 2.6).array > 0
    mine = ring_kernel(1.0, 2.6)
    pad = (k.shape[0] - mine.shape[0]) // 2
    if pad > 0:
        mine = np.pad(mine, pad)
    elif pad < 0:
        k = np.pad(k, -pad)
    np.testing.assert_array_equal(mine, k)


def test_jump_step_options(tmp_path):
    from steps.jump.step import JumpStep
    from tests.steps.test_jump import _ramp_product, _write_ref

    s, r, halo, core = _snowball(140, 25.0)
    refs = {"gain": _write_ref(tmp_path, "gain", s.gain, s.gain.shape),
            "readnoise": _write_ref(tmp_path, "readnoise", s.readnoise, s.gain.shape)}
    base = JumpStep(references=refs).process(_ramp_product(s.data.copy(), s.groupdq.copy())).groupdq
    step = JumpStep(references=refs, expand_large_events=True)
    assert JumpStep.chunking_for(step.params) == (None, 0)
    out = step.process(_ramp_product(s.data.copy(), s.groupdq.copy())).groupdq
    expect, _ = flag_snowballs(base, tgroup=NIR["tgroup"])
    np.testing.assert_array_equal(out, expect)
    assert (out != base).any()
    out2 = JumpStep(references=refs, find_showers=True).process(
        _ramp_product(s.data.copy(), s.groupdq.copy())).groupdq
    expect2, _ = flag_showers(s.data, base, s.gain, s.readnoise, tgroup=NIR["tgroup"])
    np.testing.assert_array_equal(out2, expect2)
