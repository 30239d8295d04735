"""Tests of outlier_detection: injected outliers on dithered images and in a time series."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from runner import Product
from runner.association import Member
from runner.product_set import ProductSet

from .test_resample import DITHERS, make_cal, make_set, star_list

OUTLIER, DNU = 16, 1


def _inject(prod, rng, n_cr, amplitude, margin=20):
    """Add ``n_cr`` single-pixel and 2-pixel cosmic-ray hits; returns the mask of hit pixels.

    Hits stay ``margin`` pixels from the edges, where all four dithers overlap: where only one
    or two exposures cover the sky, a median cannot tell an outlier (as in jwst).
    """
    ny, nx = prod.data.shape
    ys = rng.integers(margin, ny - margin, n_cr)
    xs = rng.integers(margin, nx - margin, n_cr)
    hit = np.zeros(prod.data.shape, bool)
    for k, (y, x) in enumerate(zip(ys, xs)):
        amp = amplitude * rng.uniform(1, 5)
        prod.data[y, x] += amp
        hit[y, x] = True
        if k % 3 == 0:                     # a short track
            prod.data[y, x + 1] += 0.5 * amp
            hit[y, x + 1] = True
    return hit


@pytest.fixture(scope="module", params=[True, False], ids=["robust_median", "jwst_median"])
def crs(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("outlier")
    rng = np.random.default_rng(42)
    stars = star_list(n=4, spacing_arcsec=1.5, flux_range=(2e-12, 1e-11))
    noise = 0.05                                   # MJy/sr, 1 sigma
    hot_y, hot_x = rng.integers(20, 80, 6), rng.integers(20, 80, 6)   # same detector pixels
    prods, hits = [], []
    for i, off in enumerate(DITHERS):
        p = make_cal((100, 100), off, stars, seed=i, noise=noise, sky=0.5,
                     name=f"jw01000001001_01101_0000{i + 1}_nrca1")
        hit = _inject(p, rng, 40, 20 * noise)                # >= 20 sigma cosmic rays
        p.data[hot_y, hot_x] += 3.0                          # hot pixels, 60 sigma
        hit[hot_y, hot_x] = True
        hits.append(hit)
        prods.append(p)
    pset = make_set(tmp, prods)
    from steps.outlier_detection.step import OutlierDetectionStep

    step = OutlierDetectionStep(robust_median=request.param)
    out = step.process(pset)
    return out, step, hits


def test_imaging_flags_injected_outliers(crs):
    out, step, hits = crs
    found = missed = false = good = 0
    for k, i in enumerate(out.indices("science")):
        q = out.open(i)
        flagged = (q.dq & (OUTLIER | DNU)) == (OUTLIER | DNU)
        found += np.count_nonzero(flagged & hits[k])
        missed += np.count_nonzero(~flagged & hits[k])
        # the 3x3 neighbourhood of a hit may be flagged by design (jwst grows the first mask)
        from scipy import ndimage

        near = ndimage.binary_dilation(hits[k], np.ones((3, 3), bool))
        false += np.count_nonzero(flagged & ~near)
        good += np.count_nonzero(~near)
        assert np.isfinite(q.data[hits[k]]).all()        # SCI untouched (DQ only, as jwst)
    rate = found / (found + missed)
    frate = false / good
    print(f"imaging: flagged {rate:.4f} of injected, {frate:.5f} of good pixels")
    assert rate >= 0.95
    assert frate < 0.001


def test_imaging_emits_crf_and_updates_set(crs):
    out, step, hits = crs
    emitted = [(sfx, obj, root) for sfx, obj, root in step._extra_outputs]
    assert [e[0] for e in emitted] == ["crf"] * 4
    assert emitted[0][2] == "jw01000001001_01101_00001_nrca1"
    # the set's members now point to the flagged copies in the working folder
    assert all("work" in str(m.path) for m in out.members)


def test_crf_then_resample_removes_cosmic_rays(crs, tmp_path):
    out, step, hits = crs
    from steps.resample.step import ResampleStep

    i2d = ResampleStep().process(out)
    # the injected hits are >= 1 MJy/sr above a 0.5 sky; after flagging nothing stands out
    # away from the stars
    stars = star_list(n=4, spacing_arcsec=1.5, flux_range=(2e-12, 1e-11))
    from steps.resample.output_grid import world_to_pixel

    x, y = world_to_pixel(i2d.wcs, stars[:, 0], stars[:, 1])
    yy, xx = np.mgrid[0:i2d.data.shape[0], 0:i2d.data.shape[1]]
    far = np.ones(i2d.data.shape, bool)
    for xs, ys in zip(x, y):
        far &= np.hypot(xx - xs, yy - ys) > 8
    con = i2d.arrays["CON"][0]
    deep = far & (con == 15)
    assert np.nanmax(i2d.data[deep]) < 0.5 + 6 * 0.05


def test_emitted_crf_save(crs, tmp_path):
    out, step, hits = crs
    sfx, obj, root = step._extra_outputs[0]
    obj.meta["R_TEST"] = "x"                              # what the runner stamps
    obj.save(tmp_path / f"{root}_{sfx}.fits")
    back = Product.open(tmp_path / f"{root}_{sfx}.fits")
    assert back.meta["R_TEST"] == "x" and np.count_nonzero(back.dq & OUTLIER) > 0


# -- time series -------------------------------------------------------------------------------
def make_tso_cube(nints=200, shape=(24, 24), seed=3, depth=0.2, n_out=60):
    """A star whose flux dips smoothly (transit) plus injected single-integration outliers."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    star = 5000.0 * np.exp(-0.5 * ((xx - 11.3) ** 2 + (yy - 12.1) ** 2) / 1.5 ** 2) + 50.0
    t = np.arange(nints)
    # transit: 10-integration ingress / egress, 60 integrations deep
    lc = np.ones(nints)
    t1, t2, t3, t4 = 60, 70, 130, 140
    lc[(t >= t1) & (t < t2)] = 1 - depth * (t[(t >= t1) & (t < t2)] - t1) / (t2 - t1)
    lc[(t >= t2) & (t < t3)] = 1 - depth
    lc[(t >= t3) & (t < t4)] = 1 - depth * (t4 - t[(t >= t3) & (t < t4)]) / (t4 - t3)
    model = lc[:, None, None] * star[None]
    err = np.sqrt(model + 25.0)                     # photon + read noise (DN-like units)
    data = model + rng.normal(0, 1, model.shape) * err
    hit = np.zeros(model.shape, bool)
    idx = (rng.integers(0, nints, n_out), rng.integers(0, ny, n_out), rng.integers(0, nx, n_out))
    hit[idx] = True
    data[hit] += rng.uniform(10, 40, hit.sum()) * err[hit]
    meta = fits.Header()
    meta["EXP_TYPE"] = "NRC_TSIMAGE"
    meta["TSOVISIT"] = True
    meta["INSTRUME"] = "NIRCAM"
    arrays = {"SCI": data.astype(np.float32), "ERR": err.astype(np.float32),
              "DQ": np.zeros(model.shape, np.uint32)}
    cube = Product("cube", meta, arrays, {}, {"SCI": fits.Header()},
                   filename="jw01000002001_01101_00001_nrca3_calints.fits")
    star_pix = star > 0.2 * star.max()
    return cube, hit, star_pix, (t >= t1) & (t < t4)


def _tso_rates(cube, hit, star_pix, in_transit):
    flagged = (cube.dq & (OUTLIER | DNU)) == (OUTLIER | DNU)
    rate = np.count_nonzero(flagged & hit) / hit.sum()
    transit_region = in_transit[:, None, None] & star_pix[None] & ~hit
    transit_flags = np.count_nonzero(flagged & transit_region) / transit_region.sum()
    false = np.count_nonzero(flagged & ~hit) / np.count_nonzero(~hit)
    return rate, transit_flags, false


def test_tso_flags_outliers_not_transit():
    from steps.outlier_detection.step import OutlierDetectionStep

    cube, hit, star_pix, in_transit = make_tso_cube()
    out = OutlierDetectionStep().process(cube)
    rate, transit_flags, false = _tso_rates(out, hit, star_pix, in_transit)
    print(f"tso: flagged {rate:.4f} of injected; transit pixels flagged {transit_flags:.5f}; "
          f"good pixels flagged {false:.5f}")
    assert rate >= 0.95
    assert transit_flags < 0.001
    assert false < 0.001


def test_tso_without_running_median_flags_transit():
    """The test can fail: one median over all integrations flags the 20 % deep transit."""
    from steps.outlier_detection.step import OutlierDetectionStep

    cube, hit, star_pix, in_transit = make_tso_cube()
    out = OutlierDetectionStep(rolling_window_width=0).process(cube)
    rate, transit_flags, false = _tso_rates(out, hit, star_pix, in_transit)
    assert transit_flags > 0.1


def test_tso_robust_noise_and_set(tmp_path):
    from steps.outlier_detection.step import OutlierDetectionStep

    cube, hit, star_pix, in_transit = make_tso_cube(seed=5)
    path = tmp_path / cube.filename
    cube.save(path)
    pset = ProductSet("jw01000-o002_t001_nircam_f210m", [Member(path, "science")])
    pset.working_dir = tmp_path / "work"
    step = OutlierDetectionStep(tso_noise="robust")
    out = step.process(pset)
    (sfx, obj, root), = step._extra_outputs
    assert sfx == "crfints" and root == "jw01000002001_01101_00001_nrca3"
    flagged_cube = out.open(0)
    rate, transit_flags, false = _tso_rates(flagged_cube, hit, star_pix, in_transit)
    assert rate >= 0.95 and transit_flags < 0.001 and false < 0.001


def test_running_median_edges():
    from steps.outlier_detection.timeseries import running_median

    x = np.arange(10, dtype=np.float32)[:, None]
    m = running_median(x, 3)
    np.testing.assert_allclose(m[1:-1, 0], x[1:-1, 0])
    assert m[0, 0] == m[1, 0] and m[-1, 0] == m[-2, 0]


def test_flag_cr_thresholds():
    from steps.outlier_detection.imaging import flag_cr

    blot = np.full((9, 9), 10.0)
    sci = blot.copy()
    err = np.ones_like(sci)
    sci[4, 4] += 6.0         # > 5 sigma: flagged
    sci[1, 1] += 4.5         # < 5 sigma and no flagged neighbour: not flagged
    sci[4, 5] += 4.5         # > 4 sigma next to a > 5 sigma pixel: flagged
    mask = flag_cr(sci, err, blot)
    assert mask[4, 4] and mask[4, 5] and not mask[1, 1] and mask.sum() == 2


# -- the median and the comparison (arrays) ------------------------------------------------------
def test_leave_one_out_medians_match_brute_force():
    import warnings

    from steps.outlier_detection.imaging import leave_one_out_medians

    rng = np.random.default_rng(2)
    for n in (2, 3, 4, 7):
        v = rng.normal(size=(n, 20, 30)).astype(np.float32)
        v[rng.random(v.shape) < 0.25] = np.nan
        got = leave_one_out_medians(v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.stack([np.where(np.isfinite(v[j]), np.nanmedian(np.delete(v, j, axis=0), axis=0), np.nan)
                             for j in range(n)])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=0, atol=1e-6)


def _stack(seed=7, n=3, shape=(60, 50)):
    rng = np.random.default_rng(seed)
    sci = (10.0 + rng.normal(0, 1.0, (n,) + shape)).astype(np.float32)
    wht = np.ones((n,) + shape, np.float32)
    return sci, wht


def test_median_rejects_a_single_outlier(tmp_path):
    from steps.outlier_detection.imaging import DiskStack, median_of_stack

    sci, wht = _stack()
    ys, xs = np.arange(5, 55, 5), np.arange(3, 43, 4)
    sci[1, ys, xs] += 12.0                       # 12 sigma outliers in image 1
    sci[0, 30, 30] += 15.0                       # two discordant values at one pixel
    sci[2, 30, 30] -= 15.0
    thr = [0.5, 0.5, 0.5]
    plain = median_of_stack(sci, wht, thr, reject_nsigma=None)
    robust = median_of_stack(sci, wht, thr)
    others = 0.5 * (sci[0, ys, xs] + sci[2, ys, xs])
    np.testing.assert_allclose(robust[ys, xs], others, rtol=0, atol=1e-5)   # median of the others
    np.testing.assert_allclose(plain[ys, xs], np.maximum(sci[0, ys, xs], sci[2, ys, xs]))  # biased
    assert robust[30, 30] == plain[30, 30]       # no single outlier: jwst's median kept
    changed = robust != plain
    changed[ys, xs] = False
    assert changed.mean() < 0.002                # elsewhere (noise only) almost never touched
    # independent of the row blocks and of the stack's storage
    np.testing.assert_array_equal(median_of_stack(sci, wht, thr, rows_per_block=7), robust)
    ds, dw = DiskStack(tmp_path / "s.dat", sci.shape), DiskStack(tmp_path / "w.dat", sci.shape)
    for g in range(3):
        ds[g], dw[g] = sci[g], wht[g]
    np.testing.assert_array_equal(median_of_stack(ds, dw, thr, rows_per_block=11), robust)


def test_maskpt_keeps_three_values():
    from steps.outlier_detection.imaging import median_of_stack

    sci, wht = _stack(n=3)
    sci[0, 10, 10] += 20.0                       # an outlier where image 2 has a low weight
    wht[2, 10, 10] = 0.3
    jwst = median_of_stack(sci, wht, [0.5] * 3, min_good=0, reject_nsigma=None)
    assert jwst[10, 10] == pytest.approx(0.5 * (sci[0, 10, 10] + sci[1, 10, 10]))   # half the outlier
    kept = median_of_stack(sci, wht, [0.5] * 3)
    assert kept[10, 10] == pytest.approx(0.5 * (sci[1, 10, 10] + sci[2, 10, 10]))
    wht[2, 10, 10] = 0.0                         # no weight at all: never used
    assert median_of_stack(sci, wht, [0.5] * 3)[10, 10] == pytest.approx(jwst[10, 10])


def test_flag_cr_derivative_noise_floor():
    from steps.outlier_detection.imaging import flag_cr

    yy, xx = np.mgrid[0:40, 0:40]
    noise = 0.5 * (-1.0) ** (yy + xx)           # a noisy median: derivative 1.0 everywhere
    star = 200.0 * np.exp(-0.5 * ((xx - 30) ** 2 + (yy - 30) ** 2) / 1.5 ** 2)
    blot = 10.0 + noise + star
    err = np.ones_like(blot)
    sci = 10.0 + star + 0.0 * blot
    sci[8, 8] += 5.6                            # 5.1 sigma above the blot there: an outlier
    sci[20, 8] += 8.0                           # 7.5 sigma: an outlier for both
    sci[30, 27] += 8.0                          # on the star's flank: within interpolation error
    jwst = flag_cr(sci, err, blot, deriv_noise_floor=False)
    ours = flag_cr(sci, err, blot)
    assert not jwst[8, 8] and ours[8, 8]        # jwst: 5 + 1.2 x 1.0 sigma needed
    assert jwst[20, 8] and ours[20, 8]
    assert not jwst[30, 27] and not ours[30, 27]    # the star's gradient still allows for it
    assert ours.sum() == 2 and jwst.sum() == 1
