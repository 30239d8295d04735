"""skymatch: overlapping dithered images with injected sky levels; truth = the injected skies."""
import logging

import numpy as np
import pytest

from runner.association import Member
from runner.errors import InputError
from runner.product_set import ProductSet
from steps.skymatch.skymatch import sky_statistic
from steps.skymatch.step import SkyMatchStep
from steps.tweakreg.simulate import make_gwcs, make_image_product, star_field

SHAPE = (128, 128)
CENTER = (80.0, -69.5)
COSD = np.cos(np.deg2rad(CENTER[1]))
SKIES = [0.30, 0.50, 0.45, 0.38]
NOISE = 0.02
DITHERS = [(0.0, 0.0), (3.0, 1.0), (-2.0, 3.5), (1.0, -3.0)]


def make_set(tmp_path, skies=SKIES, dithers=DITHERS, dq_block=False):
    ra, dec, f = star_field(40, CENTER, 9.0, seed=5, flux_range=(20.0, 200.0))
    members = []
    for k, ((dx, dy), sky) in enumerate(zip(dithers, skies)):
        pt = dict(ra_ref=CENTER[0] + dx / 3600 / COSD, dec_ref=CENTER[1] + dy / 3600, roll_ref=30.0 + 5 * k)
        w = make_gwcs(SHAPE, pixel_scale=0.1, **pt)
        prod = make_image_product(w, ra, dec, f, shape=SHAPE, sky=sky, noise=NOISE, seed=20 + k,
                                  pointing=pt, filename=f"jw0000{k}_cal.fits")
        if dq_block:                      # a flagged block of garbage that must be ignored
            prod.data[:20, :20] = 50.0
            prod.dq[:20, :20] = 1
        path = tmp_path / f"jw0000{k}_cal.fits"
        prod.save(path)
        members.append(Member(path, "science"))
    pset = ProductSet("jw_sky_image3", members)
    pset.working_dir = tmp_path / "work"
    return pset


def levels(pset):
    return np.array([pset.open(i).meta["BKGLEVEL"] for i in pset.indices()])


def test_sky_statistic_mode_of_noise():
    rng = np.random.default_rng(0)
    v = rng.normal(1.0, 0.1, 20000)
    for stat in ("mode", "median", "mean"):
        value, n = sky_statistic(v, stat)
        assert abs(value - 1.0) < 0.01 and n > 19000


def test_match_recovers_sky_differences(tmp_path):
    pset = make_set(tmp_path, dq_block=True)
    out = SkyMatchStep().process(pset)
    lev = levels(out)
    truth = np.array(SKIES) - min(SKIES)
    # within 1 % of the injected differences (max difference 0.2 MJy/sr -> 0.002)
    assert np.max(np.abs(lev - truth)) < 0.01 * truth.max(), (lev, truth)
    p = out.open(0)
    assert p.meta["BKGSUB"] is False and p.meta["BKGMETH"] == "match"


def test_subtract_and_match_up(tmp_path):
    pset = make_set(tmp_path)
    before = [float(np.median(pset.open(i).data)) for i in pset.indices()]
    out = SkyMatchStep(subtract=True, match_down=False).process(pset)
    lev = levels(out)
    truth = np.array(SKIES) - max(SKIES)
    assert np.max(np.abs(lev - truth)) < 0.002
    after = [float(np.median(out.open(i).data)) for i in out.indices()]
    np.testing.assert_allclose(np.array(before) - np.array(after), lev, atol=1e-5)
    assert np.ptp(after) < 0.005                  # matched: the skies agree after subtraction
    assert out.open(1).meta["BKGSUB"] is True


def test_local_global_and_global_match(tmp_path):
    pset = make_set(tmp_path)
    originals = list(pset.members)                       # update() never touches these files

    def fresh(name):
        s = ProductSet(name, originals)
        s.working_dir = tmp_path / name
        return s

    lev = levels(SkyMatchStep(skymethod="local").process(fresh("l")))
    assert np.max(np.abs(lev - SKIES)) < 0.003           # stars bias the mode a little
    lev = levels(SkyMatchStep(skymethod="global").process(fresh("g")))
    assert np.allclose(lev, lev[0]) and abs(lev[0] - min(SKIES)) < 0.003
    lev = levels(SkyMatchStep(skymethod="global+match").process(fresh("gm")))
    assert np.max(np.abs(lev - SKIES)) < 0.003


def test_no_overlap_warns(tmp_path, caplog):
    pset = make_set(tmp_path, skies=SKIES[:2], dithers=[(0.0, 0.0), (40.0, 0.0)])
    with caplog.at_level(logging.WARNING, logger="webbcal.step.skymatch"):
        out = SkyMatchStep().process(pset)
    assert "overlaps no other exposure" in caplog.text
    assert np.allclose(levels(out), 0.0)


def test_missing_wcs_names_file(tmp_path):
    pset = make_set(tmp_path, skies=SKIES[:2], dithers=DITHERS[:2])
    p = pset.open(0)
    p.wcs = None
    pset.update(0, p)
    with pytest.raises(InputError, match="jw00000_cal.fits: has no WCS"):
        SkyMatchStep().process(pset)
