"""Tests of steps.ramp_fit.ols.fit_ramps against injected truth and analytic answers."""
import hashlib

import numpy as np
import pytest

from steps.jump.twopoint import detect_jumps
from steps.ramp_fit.ols import _frame_averaging_table, _weight_table, fit_ramps, frame_averaging_constant, resolve_cores
from tests.steps.synthetic_ramps import make_ramps

DNU, SAT, JUMP, NGV = 1, 2, 4, 1 << 19
GAIN, RN, TG = 2.0, 12.0, 10.0
SATLEVEL = 60000.0

# rate classes, DN/s: faint, bright, near saturation (55000 DN at the last of 10 groups)
CLASSES = {"faint": 1.0, "bright": 100.0, "near_saturation": 550.0}


def _fit(s, gdq=None, **kw):
    return fit_ramps(s.data, s.groupdq if gdq is None else gdq, s.pixeldq, s.gain, s.readnoise,
                     tgroup=s.tgroup, tframe=s.tframe, nframes=s.nframes, **kw)


def _pull_stats(rate, err, truth):
    ok = np.isfinite(rate) & (err > 0)
    pull = ((rate - truth) / err)[ok]
    med = np.median(pull)
    rstd = 1.4826 * np.median(np.abs(pull - med))
    return med, rstd, ok.mean()


def _class_rates(n=64):
    """A (n, 3n) rate image: one n x n block per class."""
    return np.concatenate([np.full((n, n), r) for r in CLASSES.values()], axis=1)


def _check_pulls(res_rate, res_err, truth, n=64, label=""):
    for c, name in enumerate(CLASSES):
        sl = np.s_[:, c * n:(c + 1) * n]
        med, rstd, frac = _pull_stats(res_rate[sl], res_err[sl], truth[sl])
        assert frac > 0.99, (label, name, frac)
        assert abs(med) <= 0.05, (label, name, med)
        assert 0.95 <= rstd <= 1.10, (label, name, rstd)


@pytest.mark.parametrize("nints", [1, 5])
def test_pulls_clean(nints):
    s = make_ramps(_class_rates(), nints=nints, ngroups=10, gain=GAIN, readnoise=RN, tgroup=TG,
                   saturation=SATLEVEL, seed=10 + nints)
    assert not (s.groupdq & SAT).any()  # near-saturation class stays below saturation
    res = _fit(s)
    _check_pulls(res.rate.data, res.rate.err, s.rate, label=f"rate nints={nints}")
    _check_pulls(res.rateints.data[-1], res.rateints.err[-1], s.rate, label="last integration")
    # ERR and the variances are consistent
    np.testing.assert_allclose(res.rate.err ** 2, res.rate.var_poisson.astype(np.float64) + res.rate.var_rnoise,
                               rtol=1e-5)


@pytest.mark.parametrize("nints", [1, 5])
def test_pulls_with_cosmic_rays_after_jump_detection(nints):
    s = make_ramps(_class_rates(), nints=nints, ngroups=10, gain=GAIN, readnoise=RN, tgroup=TG,
                   cr_fraction=0.2, cr_amp_range=(300.0, 3000.0), saturation=SATLEVEL, seed=20 + nints)
    gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise, nframes=1)
    assert (gdq & JUMP).any()
    res = _fit(s, gdq=gdq)
    _check_pulls(res.rate.data, res.rate.err, s.rate, label=f"CR nints={nints}")
    # without jump detection the CR pixels are biased: the test can fail
    bad = _fit(s)
    hit = s.cr_mask.any(axis=(0, 1))
    assert np.median((bad.rate.data - s.rate)[hit] / bad.rate.err[hit]) > 1.0


def test_saturated_ramp_uses_exactly_its_unsaturated_groups():
    rate = np.full((8, 8), 950.0)  # 57000 DN after 6 groups of 10 s, saturated (60000 DN) at the 7th
    s = make_ramps(rate, nints=1, ngroups=10, gain=GAIN, readnoise=RN, tgroup=TG, saturation=SATLEVEL, seed=3)
    nsat = (s.groupdq[0, :, 0, 0] & SAT) > 0
    first = int(np.argmax(nsat))
    assert 2 < first < 10 and (s.groupdq[0, first:] & SAT).all() and not (s.groupdq[0, :first] & SAT).any()
    full = _fit(s)
    direct = fit_ramps(s.data[:, :first], np.zeros_like(s.groupdq[:, :first]), s.pixeldq, s.gain, s.readnoise,
                       tgroup=TG, tframe=TG, nframes=1)
    for name in ("data", "err", "var_poisson", "var_rnoise"):
        np.testing.assert_array_equal(getattr(full.rate, name), getattr(direct.rate, name))
    assert (full.rate.dq == SAT).all() and (direct.rate.dq == 0).all()
    # the saturated groups really are ignored: changing them changes nothing
    s.data[:, first:] = -1.0e5
    again = _fit(s)
    np.testing.assert_array_equal(again.rate.data, full.rate.data)


def _one(values, flags=None, gain=GAIN, rn=RN, **kw):
    """Fit a single-pixel, single-integration ramp."""
    d = np.asarray(values, np.float32).reshape(1, -1, 1, 1)
    q = np.zeros(d.shape, np.uint8) if flags is None else np.asarray(flags, np.uint8).reshape(d.shape)
    kw.setdefault("tgroup", TG)
    kw.setdefault("tframe", TG)
    kw.setdefault("nframes", 1)
    return fit_ramps(d, q, np.zeros((1, 1), np.uint32), np.full((1, 1), gain, np.float32),
                     np.full((1, 1), rn, np.float32), **kw)


def _scalar(res):
    r = res.rate
    return float(r.data[0, 0]), float(r.err[0, 0]), int(r.dq[0, 0]), float(r.var_poisson[0, 0]), float(r.var_rnoise[0, 0])


def test_two_groups_analytic():
    slope, err, dq, vp, vr = _scalar(_one([100.0, 150.0]))
    assert slope == pytest.approx(5.0, rel=1e-6)
    assert vr == pytest.approx(RN ** 2 / TG ** 2, rel=1e-5)      # 2 reads of rn/sqrt(2): rn^2 / tgroup^2
    assert vp == pytest.approx(5.0 / (TG * GAIN), rel=1e-5)      # median rate / (tgroup * gain)
    assert err == pytest.approx(np.sqrt(vp + vr), rel=1e-6) and dq == 0


def test_one_group_analytic():
    # ngroups == 1: slope = data / ((nframes + 1) * tframe / 2)
    slope, err, dq, vp, vr = _scalar(_one([30.0], tframe=10.0, nframes=1))
    assert slope == pytest.approx(3.0, rel=1e-6)
    assert vr == pytest.approx(RN ** 2 / 10.0 ** 2, rel=1e-5)
    assert vp == pytest.approx(3.0 / (10.0 * GAIN), rel=1e-5)
    assert dq == 0


def test_all_saturated_and_saturated_in_group0():
    for flags in ([SAT | DNU] * 5, [SAT] * 5, [SAT, 0, 0, 0, 0]):
        slope, err, dq, vp, vr = _scalar(_one([1.0, 2, 3, 4, 5], flags))
        assert np.isnan(slope) and err == 0 and vp == 0 and vr == 0
        assert dq == DNU | SAT
        ints = _one([1.0, 2, 3, 4, 5], flags).rateints
        assert np.isnan(ints.data[0, 0, 0]) and ints.dq[0, 0, 0] == DNU | SAT


def test_jump_splits_into_two_segments():
    t = np.arange(10) * TG
    ramp = 1.0 * t
    ramp[5:] += 1000.0
    flags = np.zeros(10, np.uint8)
    flags[5] = JUMP
    slope, err, dq, vp, vr = _scalar(_one(ramp, flags))
    assert slope == pytest.approx(1.0, rel=1e-6)  # the 1000 DN jump is ignored
    rn_e = RN * GAIN / np.sqrt(2)
    var_r5 = 12 * (rn_e / TG) ** 2 / ((5 ** 3 - 5) * GAIN ** 2)   # one 5-group segment
    assert vr == pytest.approx(var_r5 / 2, rel=1e-5)              # two of them
    assert dq == JUMP
    # unflagged, the jump biases the slope
    assert _scalar(_one(ramp))[0] > 5.0


def test_one_good_group_suppressed_or_not():
    flags = [0] + [SAT | DNU] * 4
    slope, err, dq, vp, vr = _scalar(_one([40.0, 1, 1, 1, 1], flags))
    assert np.isnan(slope) and dq & DNU and dq & SAT
    slope, err, dq, vp, vr = _scalar(_one([40.0, 1, 1, 1, 1], flags, suppress_one_group=False, tframe=TG))
    assert slope == pytest.approx(40.0 / TG, rel=1e-6)  # group 0 only: (nframes + 1) * tframe / 2
    assert dq == SAT


@pytest.mark.parametrize("gain", [0.0, -1.0, np.nan])
def test_bad_gain(gain):
    slope, err, dq, vp, vr = _scalar(_one([0.0, 10, 20, 30], gain=gain))
    assert np.isnan(slope) and err == 0 and dq == DNU | NGV


def test_nan_readnoise():
    slope, err, dq, vp, vr = _scalar(_one([0.0, 10, 20, 30], rn=np.nan))
    assert np.isnan(slope) and dq == DNU


def test_cores_bit_identical_and_parsing():
    s = make_ramps(_class_rates(16), nints=2, ngroups=6, gain=GAIN, readnoise=RN, tgroup=TG,
                   cr_fraction=0.2, saturation=20000.0, seed=5)
    a = _fit(s, maximum_cores=1)
    b = _fit(s, maximum_cores="all")
    for prod in ("rate", "rateints"):
        for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
            np.testing.assert_array_equal(getattr(getattr(a, prod), name), getattr(getattr(b, prod), name))
    assert resolve_cores("none") == 1 and resolve_cores(1) == 1 and resolve_cores("all") >= 1
    with pytest.raises(ValueError):
        resolve_cores("lots")


@pytest.mark.slow
def test_pulls_large_many_groups():
    s = make_ramps(_class_rates(128), nints=3, ngroups=40, gain=GAIN, readnoise=RN, tgroup=2.5,
                   cr_fraction=0.3, cr_amp_range=(300.0, 3000.0), saturation=1e9, seed=7)
    gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise)
    res = _fit(s, gdq=gdq)
    _check_pulls(res.rate.data, res.rate.err, s.rate, n=128, label="40 groups")


def test_reference_poisson_variance_underestimates_split_bright_ramps():
    """The reference's VAR_POISSON for ramps split by jumps is too small; 'propagated' fixes it."""
    s = make_ramps(np.full((64, 64), 100.0), nints=5, ngroups=10, gain=GAIN, readnoise=RN, tgroup=TG,
                   cr_fraction=0.2, cr_amp_range=(300.0, 3000.0), seed=25)
    gdq = detect_jumps(s.data, s.groupdq, s.gain, s.readnoise)
    ref = _fit(s, gdq=gdq, poisson_variance="reference", weighting="optimal_stcal")
    new = _fit(s, gdq=gdq, weighting="optimal_stcal")
    np.testing.assert_array_equal(ref.rate.data, new.rate.data)   # same slopes
    assert _pull_stats(ref.rate.data, ref.rate.err, s.rate)[1] > 1.10
    assert 0.95 <= _pull_stats(new.rate.data, new.rate.err, s.rate)[1] <= 1.10
    single = ~(gdq & JUMP).any(axis=(0, 1))                          # one segment per integration
    np.testing.assert_allclose(ref.rate.var_poisson[single], new.rate.var_poisson[single], rtol=1e-6)


def test_ramp_fit_step(tmp_path):
    from tests.steps.test_jump import _ramp_product, _write_ref
    from steps.ramp_fit.step import RampFitStep

    s = make_ramps(_class_rates(8), nints=2, ngroups=6, gain=GAIN, readnoise=RN, tgroup=TG, seed=6)
    refs = {"gain": _write_ref(tmp_path, "gain", s.gain, s.gain.shape),
            "readnoise": _write_ref(tmp_path, "readnoise", s.readnoise, s.gain.shape)}
    step = RampFitStep(references=refs, maximum_cores="2")
    rate = step.process(_ramp_product(s.data.copy(), s.groupdq.copy()))
    expect = _fit(s)
    assert rate.kind == "image"
    np.testing.assert_array_equal(rate.data, expect.rate.data)
    np.testing.assert_array_equal(rate.err, expect.rate.err)
    np.testing.assert_array_equal(rate.dq, expect.rate.dq)
    (suffix, ints, _), = step._extra_outputs
    assert suffix == "rateints" and ints.kind == "cube"
    np.testing.assert_array_equal(ints.data, expect.rateints.data)
    assert rate.ext_headers["SCI"]["BUNIT"] == "DN/s"
    # lastgroup: groups after it are not used
    short = RampFitStep(references=refs, lastgroup=3).process(_ramp_product(s.data.copy(), s.groupdq.copy()))
    direct = fit_ramps(s.data[:, :4], s.groupdq[:, :4], s.pixeldq, s.gain, s.readnoise, tgroup=TG, tframe=TG, nframes=1)
    np.testing.assert_array_equal(short.data, direct.rate.data)
    # the weighting choice reaches fit_ramps
    stc = RampFitStep(references=refs, weighting="optimal_stcal", poisson_variance="reference").process(
        _ramp_product(s.data.copy(), s.groupdq.copy()))
    direct = _fit(s, weighting="optimal_stcal", poisson_variance="reference")
    np.testing.assert_array_equal(stc.data, direct.rate.data)
    np.testing.assert_array_equal(stc.err, direct.rate.err)


# ---------------------------------------------------------------------------------------------
# Multi-frame groups (NFRAMES > 1): Poisson variance of frame-averaged groups (issue 4)

#: readout -> (nframes, groupgap, ngroups)
MULTIFRAME = {"BRIGHT2": (2, 0, 6), "MEDIUM8": (8, 2, 10)}


def _multiframe_classes(nframes, groupgap, ngroups, n, rng):
    """(n, 4n) rates, DN/s: faint, bright, near saturation, saturating after 2-4 good groups."""
    tframe = TG / (nframes + groupgap)

    def tmean(g):                                   # mean read time of group g
        return (g * (nframes + groupgap) + (nframes + 1) / 2) * tframe

    tl = tmean(ngroups - 1)
    blocks = [rng.uniform(0.2, 3.0, (n, n)),
              np.exp(rng.uniform(np.log(30.0), np.log(0.6 * SATLEVEL / tl), (n, n))),
              rng.uniform(0.74, 0.98, (n, n)) * SATLEVEL / tl,
              rng.uniform(1.02 * SATLEVEL / tmean(4), 0.98 * SATLEVEL / tmean(1), (n, n))]
    return np.concatenate(blocks, axis=1)


@pytest.mark.parametrize("nints", [1, 5])
@pytest.mark.parametrize("readpatt", sorted(MULTIFRAME))
def test_pulls_multiframe_groups(readpatt, nints):
    """Frame-averaged groups: pulls within tolerance in all four classes; stcal's ERR is too large."""
    nframes, groupgap, ngroups = MULTIFRAME[readpatt]
    n = 64
    rate = _multiframe_classes(nframes, groupgap, ngroups, n, np.random.default_rng(nints))
    s = make_ramps(rate, nints=nints, ngroups=ngroups, gain=GAIN, readnoise=RN, tgroup=TG, nframes=nframes,
                   groupgap=groupgap, saturation=SATLEVEL, seed=40 + nints)
    assert s.tframe == pytest.approx(TG / (nframes + groupgap))
    sat = s.groupdq[:, :, :, 3 * n:] & SAT
    assert sat.any(axis=1).all() and not sat[:, 1].any()            # saturating, >= 2 good groups
    assert not (s.groupdq[:, :, :, :3 * n] & SAT).any()
    res = _fit(s, groupgap=groupgap)
    ref = _fit(s, groupgap=groupgap, poisson_variance="reference", weighting="optimal_stcal")
    names = ("faint", "bright", "near_saturation", "saturating")
    for c, name in enumerate(names):
        sl = np.s_[:, c * n:(c + 1) * n]
        med, rstd, frac = _pull_stats(res.rate.data[sl], res.rate.err[sl], s.rate[sl])
        assert frac > 0.99, (readpatt, name, frac)
        assert abs(med) <= 0.05, (readpatt, name, med)
        assert 0.95 <= rstd <= 1.10, (readpatt, name, rstd)
        if name == "saturating":
            # the reference ignores the frame averaging: ERR too large, pulls too narrow
            assert _pull_stats(ref.rate.data[sl], ref.rate.err[sl], s.rate[sl])[1] < 0.94, (readpatt, name)
    np.testing.assert_allclose(res.rate.err ** 2, res.rate.var_poisson.astype(np.float64) + res.rate.var_rnoise,
                               rtol=1e-5)


def test_frame_averaging_variance_analytic():
    """Two groups of NFRAMES=2: Var = lambda (tgroup - 2c) / tgroup**2, c = tframe (n**2 - 1) / (6 n)."""
    tframe = TG / 2
    c = frame_averaging_constant(tframe, 2)
    assert c == pytest.approx(tframe * 3 / 12)
    assert frame_averaging_constant(TG, 1) == 0.0
    kw = dict(tgroup=TG, tframe=tframe, nframes=2)
    slope, err, dq, vp, vr = _scalar(_one([100.0, 150.0], **kw))
    assert slope == pytest.approx(5.0, rel=1e-6)
    assert vp == pytest.approx(5.0 / (TG * GAIN) * (1 - 2 * c / TG), rel=1e-5)
    assert vr == pytest.approx(RN ** 2 / 2 / TG ** 2, rel=1e-5)     # per-group noise rn / sqrt(2 nframes)
    ref = _scalar(_one([100.0, 150.0], poisson_variance="reference", **kw))
    assert ref[3] == pytest.approx(5.0 / (TG * GAIN), rel=1e-5)     # stcal ignores the averaging
    # weighted segments: exact relative fall of the Poisson variance for the weights used
    wtab = _weight_table(6)
    ftab = _frame_averaging_table(wtab, 6, c, TG)
    for p in range(1, wtab.shape[0]):
        assert ftab[p, 3] == pytest.approx(2 * c / (2 * TG))        # 3 groups, P > 0: end points
    assert ftab[5, 6] == pytest.approx(2 * c / (5 * TG), rel=1e-2)  # P = 10: ~end points
    # P = 0 (plain OLS), 4 groups: a = (-3, -1, 1, 3) / 10, A = (0.3, 0.4, 0.3)
    assert ftab[0, 4] == pytest.approx(c * 0.2 / (TG * 0.34))
    assert not _frame_averaging_table(wtab, 6, 0.0, TG).any()


# ---------------------------------------------------------------------------------------------
# Optimal-weighting exponent: expected S/N from the robust rate, not the segment's own noise


def _rate_at_snr(snr, ngroups, nframes=1):
    """Rate (DN/s) whose ngroups-group ramp has the optimal-weighting S/N ``snr`` exactly."""
    rn_e = RN * GAIN / np.sqrt(2 * nframes)
    de = (snr ** 2 + np.sqrt(snr ** 4 + 4 * snr ** 2 * rn_e ** 2)) / 2
    return de / GAIN / ((ngroups - 1) * TG)


@pytest.mark.parametrize("snr", [10.0, 20.0])
def test_weighting_unbiased_at_snr_steps(snr):
    """20 integrations at an S/N step: the default weighting is unbiased, stcal's is not."""
    s = make_ramps(np.full((200, 200), _rate_at_snr(snr, 8)), nints=20, ngroups=8, gain=GAIN, readnoise=RN,
                   tgroup=TG, seed=int(snr))
    res = _fit(s)
    med, rstd, frac = _pull_stats(res.rate.data, res.rate.err, s.rate)
    assert frac == 1.0 and abs(med) <= 0.05 and 0.95 <= rstd <= 1.10, (med, rstd)
    medi, rstdi, _ = _pull_stats(res.rateints.data, res.rateints.err, np.broadcast_to(s.rate, res.rateints.data.shape))
    assert abs(medi) <= 0.03 and 0.95 <= rstdi <= 1.10, (medi, rstdi)
    old = _fit(s, weighting="optimal_stcal")
    assert _pull_stats(old.rate.data, old.rate.err, s.rate)[0] > 0.06       # the test can fail
    # the exponent choice changes only the slopes: variances are the same
    np.testing.assert_array_equal(res.rate.var_rnoise, old.rate.var_rnoise)
    np.testing.assert_array_equal(res.rate.var_poisson, old.rate.var_poisson)


def test_invalid_weighting_and_poisson_variance():
    with pytest.raises(ValueError):
        _one([0.0, 1, 2], weighting="unweighted")
    with pytest.raises(ValueError):
        _one([0.0, 1, 2], poisson_variance="exact")


# ---------------------------------------------------------------------------------------------
# poisson_variance='reference', weighting='optimal_stcal': stcal 1.20 bit for bit


def _fingerprint_input(nframes, groupgap):
    """Deterministic ramps (independent of make_ramps): wide rate range, jumps, saturation,
    DO_NOT_USE groups, a zero gain and a NaN read noise."""
    rng = np.random.default_rng(20240611)
    nints, ngroups, ny, nx = 3, 7, 6, 40
    tframe = TG / (nframes + groupgap) if nframes > 1 else TG
    tgroup = tframe * (nframes + groupgap)
    rate = np.exp(rng.uniform(np.log(0.1), np.log(3000.0), (ny, nx)))
    t = (np.arange(ngroups) + 1.0) * tgroup
    shape = (nints, ngroups, ny, nx)
    data = rate[None, None] * t[None, :, None, None] + rng.normal(0, 9.0, shape)
    data += rng.poisson(np.broadcast_to(rate * 2.0 * tgroup, shape)).cumsum(1) / 2.0 - rate * t[None, :, None, None]
    gdq = np.zeros(shape, np.uint8)
    gdq[np.maximum.accumulate(data >= 40000.0, axis=1)] = SAT
    hit = rng.random(shape) < 0.05
    hit[:, 0] = False
    data += np.cumsum(np.where(hit, 3000.0, 0.0), axis=1)
    gdq[hit & (gdq == 0)] |= JUMP
    gdq[rng.random(shape) < 0.02] |= DNU
    gain = np.full((ny, nx), GAIN, np.float32)
    gain[0, 0] = 0.0
    rn = np.full((ny, nx), RN, np.float32)
    rn[0, 1] = np.nan
    return (data.astype(np.float32), gdq, np.zeros((ny, nx), np.uint32), gain, rn,
            dict(tgroup=tgroup, tframe=tframe, nframes=nframes, groupgap=groupgap))


#: sha256 (first 16 hex digits) of all rate and rateints arrays of :func:`_fingerprint_input`,
#: recorded before the multi-frame variance and weighting changes; the 'reference' ones were
#: checked equal, array by array, to stcal 1.20.0 ``ramp_fit_data(..., 'OLS_C', 'optimal')``.
FINGERPRINTS = {
    (1, 0, "reference"): "0744a5c4a2821024",
    (2, 0, "reference"): "8fbaeab3ec0e1338",
    (8, 2, "reference"): "4fe54362d7ce07b7",
    (1, 0, "propagated"): "4e716d9c982f8c62",    # RAPID: no frame averaging, unchanged
}


@pytest.mark.parametrize("key", sorted(FINGERPRINTS))
def test_reference_mode_bit_identical(key):
    nframes, groupgap, pv = key
    data, gdq, pdq, gain, rn, kw = _fingerprint_input(nframes, groupgap)
    res = fit_ramps(data, gdq, pdq, gain, rn, poisson_variance=pv, weighting="optimal_stcal", **kw)
    h = hashlib.sha256()
    for prod in ("rate", "rateints"):
        for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
            h.update(np.ascontiguousarray(getattr(getattr(res, prod), name)).tobytes())
    assert h.hexdigest()[:16] == FINGERPRINTS[key]
    # and the default path really differs (frame averaging / weighting)
    new = fit_ramps(data, gdq, pdq, gain, rn, **kw)
    assert not np.array_equal(new.rate.data, res.rate.data, equal_nan=True) or \
        not np.array_equal(new.rate.var_poisson, res.rate.var_poisson)
