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


@pytest.fixture(scope="module")
def crs(tmp_path_factory):
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

    step = OutlierDetectionStep()
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
