"""tweakreg: dithered star fields with injected pointing errors; truth = the true WCS."""
import logging

import numpy as np
import pytest
from astropy.table import Table

from runner.association import Member
from runner.errors import InputError
from runner.product_set import ProductSet
from runner.step import SkipStep
from steps.tweakreg.catalog import make_tweakreg_catalog
from steps.tweakreg.simulate import gaussian_scene, make_gwcs, make_image_product, star_field
from steps.tweakreg.step import TweakRegStep

SHAPE = (128, 128)
SCALE = 0.1                         # arcsec / pixel
CENTER = (80.0, -69.5)
ROLL = 30.0
COSD = np.cos(np.deg2rad(CENTER[1]))


def _pointing(dx_arcsec, dy_arcsec, droll=0.0):
    return dict(ra_ref=CENTER[0] + dx_arcsec / 3600.0 / COSD, dec_ref=CENTER[1] + dy_arcsec / 3600.0,
                roll_ref=ROLL + droll)


def grid_field(spacing=2.0, half_width=9.0, seed=3, flux=(60.0, 600.0), center=CENTER):
    """Stars on a jittered grid (arcsec spacing): no pair closer than ~spacing/2, as sparse
    as real astrometric fields relative to the matching tolerance."""
    rng = np.random.default_rng(seed)
    g = np.arange(-half_width, half_width + 1e-9, spacing)
    gx, gy = np.meshgrid(g, g)
    n = gx.size
    xi = gx.ravel() + rng.uniform(-spacing / 4, spacing / 4, n)
    eta = gy.ravel() + rng.uniform(-spacing / 4, spacing / 4, n)
    dec = center[1] + eta / 3600.0
    ra = center[0] + xi / 3600.0 / np.cos(np.deg2rad(dec))
    f = np.exp(rng.uniform(np.log(flux[0]), np.log(flux[1]), n))
    return ra, dec, f


def make_set(tmp_path, dithers, errors, nstars=80, seed=3, noise=0.05, flux=(60.0, 600.0),
             field=None):
    """Exposures of one star field: images rendered with the true WCS, stored with a WCS whose
    pointing carries ``errors`` (dx, dy arcsec, droll deg)."""
    if field is not None:
        ra, dec, f = field
    else:
        ra, dec, f = star_field(nstars, CENTER, 7.0, seed=seed, flux_range=flux)
    members, truths = [], []
    for k, ((dx, dy), (ex, ey, er)) in enumerate(zip(dithers, errors)):
        true_p = _pointing(dx, dy)
        bad_p = _pointing(dx + ex, dy + ey, er)
        true_w = make_gwcs(SHAPE, pixel_scale=SCALE, **true_p)
        bad_w = make_gwcs(SHAPE, pixel_scale=SCALE, **bad_p)
        prod = make_image_product(true_w, ra, dec, f, shape=SHAPE, sky=0.2, noise=noise, seed=10 + k,
                                  header_wcs=bad_w, pointing=bad_p, filename=f"jw0000{k}_cal.fits")
        path = tmp_path / f"jw0000{k}_cal.fits"
        prod.save(path)
        members.append(Member(path, "science"))
        truths.append(true_w)
    pset = ProductSet("jw_test_image3", members)
    pset.working_dir = tmp_path / "work"
    return pset, truths, (ra, dec)


def _inside(x, y):
    return (x > 3) & (x < SHAPE[1] - 4) & (y > 3) & (y < SHAPE[0] - 4)


def sky_error_pix(wcs, true_wcs, ra, dec):
    """Offsets (pixels) between where ``wcs`` puts the true source pixels and the true sky."""
    x, y = true_wcs.invert(ra, dec)
    ok = _inside(x, y)
    r2, d2 = wcs(x[ok], y[ok])
    dra = (np.asarray(r2) - ra[ok]) * np.cos(np.deg2rad(dec[ok])) * 3600.0
    ddec = (np.asarray(d2) - dec[ok]) * 3600.0
    return np.hypot(dra, ddec) / SCALE, ok


def pairwise_rms(wcss, truths, ra, dec):
    """RMS (pixels) of the relative sky disagreement of the true sources between exposures."""
    diffs = []
    sky = []
    for w, t in zip(wcss, truths):
        x, y = t.invert(ra, dec)
        ok = _inside(x, y)
        r, d = w(x, y)
        sky.append((np.where(ok, r, np.nan), np.where(ok, d, np.nan)))
    for a in range(len(sky)):
        for b in range(a + 1, len(sky)):
            dra = (sky[a][0] - sky[b][0]) * np.cos(np.deg2rad(dec)) * 3600.0
            ddec = (sky[a][1] - sky[b][1]) * 3600.0
            sep = np.hypot(dra, ddec)[np.isfinite(dra)]
            diffs.append(sep / SCALE)
    d = np.concatenate(diffs)
    return float(np.sqrt(np.mean(d ** 2)))


DITHERS = [(0.0, 0.0), (1.6, 1.1), (-1.2, 1.9)]
ERRORS = [(0.4, -0.3, 0.0), (-0.9, 0.5, 0.08), (0.7, 0.8, -0.1)]


def test_catalog_finds_injected_stars():
    rng = np.random.default_rng(1)
    gx, gy = np.meshgrid(np.arange(5) * 24 + 16.0, np.arange(5) * 24 + 16.0)
    x = gx.ravel() + rng.uniform(-3, 3, 25)             # well separated: no blends
    y = gy.ravel() + rng.uniform(-3, 3, 25)
    img = gaussian_scene(SHAPE, x, y, np.full(25, 200.0), 1.2) + rng.normal(0, 0.05, SHAPE)
    # max centroid error (pixels): IRAF moments are pixel-phase biased, DAO less, segmentation least
    for finder, tol in (("iraf", 0.25), ("dao", 0.08), ("segmentation", 0.05)):
        cat = make_tweakreg_catalog(img, 10.0, starfinder=finder, kernel_fwhm=2.5, bkg_boxsize=400)
        assert len(cat) == 25, finder
        d = np.hypot(cat["xcentroid"][:, None] - x[None], cat["ycentroid"][:, None] - y[None]).min(axis=1)
        assert np.all(d < tol), (finder, d.max())


def test_relative_alignment_recovers_pointing_errors(tmp_path):
    pset, truths, (ra, dec) = make_set(tmp_path, DITHERS, ERRORS)
    before = pairwise_rms([pset.open(i).wcs for i in pset.indices()], truths, ra, dec)
    assert before > 5.0                                  # ~1 arcsec = 10 pixels of injected error
    out = TweakRegStep().process(pset)
    prods = [out.open(i) for i in out.indices()]
    after = pairwise_rms([p.wcs for p in prods], truths, ra, dec)
    assert after < 0.02, after
    assert all(p.meta["S_TWKREG"] == "COMPLETE" for p in prods)
    tweaked = [p for p in prods if "v2v3corr" in p.wcs.available_frames]
    assert len(tweaked) == 2                             # the reference exposure is not changed
    assert all("A_ORDER" in p.ext_headers["SCI"] or "CTYPE1" in p.ext_headers["SCI"] for p in tweaked)


def test_absolute_alignment_to_reference_catalog(tmp_path):
    pset, truths, (ra, dec) = make_set(tmp_path, DITHERS, ERRORS, field=grid_field())
    refcat = tmp_path / "refcat.ecsv"
    Table({"ra": ra, "dec": dec}).write(refcat, format="ascii.ecsv")
    out = TweakRegStep(abs_refcat=str(refcat), abs_searchrad=3.0).process(pset)
    for i, t in zip(out.indices(), truths):
        err, _ = sky_error_pix(out.open(i).wcs, t, ra, dec)
        assert np.sqrt(np.mean(err ** 2)) < 0.02, np.sqrt(np.mean(err ** 2))


@pytest.mark.slow
def test_fitgeometry_shift_only(tmp_path):
    errors = [(0.4, -0.3, 0.0), (-0.9, 0.5, 0.0), (0.7, 0.8, 0.0)]
    pset, truths, (ra, dec) = make_set(tmp_path, DITHERS, errors)
    out = TweakRegStep(fitgeometry="shift").process(pset)
    assert pairwise_rms([out.open(i).wcs for i in out.indices()], truths, ra, dec) < 0.02


def test_single_exposure_is_skipped(tmp_path):
    pset, _, _ = make_set(tmp_path, DITHERS[:1], ERRORS[:1])
    with pytest.raises(SkipStep):
        TweakRegStep().process(pset)
    assert pset.open(0).meta["S_TWKREG"] == "SKIPPED"
    assert "v2v3corr" not in pset.open(0).wcs.available_frames


def test_exposure_without_sources_is_skipped_with_warning(tmp_path, caplog):
    pset, truths, (ra, dec) = make_set(tmp_path, DITHERS, ERRORS)
    blank = pset.open(2)
    blank.data = np.random.default_rng(0).normal(0.2, 0.05, SHAPE).astype(np.float32)
    pset.update(2, blank)
    with caplog.at_level(logging.WARNING, logger="webbcal.step.tweakreg"):
        out = TweakRegStep().process(pset)
    assert "minobj" in caplog.text
    prods = [out.open(i) for i in out.indices()]
    assert prods[2].meta["S_TWKREG"] == "SKIPPED"
    assert "v2v3corr" not in prods[2].wcs.available_frames
    assert pairwise_rms([p.wcs for p in prods[:2]], truths[:2], ra, dec) < 0.02


def test_no_sources_anywhere(tmp_path):
    pset, _, _ = make_set(tmp_path, DITHERS[:2], ERRORS[:2], nstars=0)
    with pytest.raises(SkipStep):
        TweakRegStep().process(pset)


@pytest.mark.slow
def test_no_overlap_warns_and_keeps_wcs(tmp_path, caplog):
    field = grid_field(spacing=2.0, half_width=22.0)        # stars everywhere
    pset, _, _ = make_set(tmp_path, [(-12.0, 0.0), (12.0, 0.0)], ERRORS[:2], field=field)
    with caplog.at_level(logging.WARNING, logger="webbcal.step.tweakreg"):
        try:
            TweakRegStep().process(pset)
        except SkipStep:
            pass
    assert "overlaps no other exposure" in caplog.text
    for i in pset.indices():
        assert "v2v3corr" not in pset.open(i).wcs.available_frames


def test_member_without_wcs_names_file(tmp_path):
    pset, _, _ = make_set(tmp_path, DITHERS[:2], ERRORS[:2])
    p = pset.open(1)
    p.wcs = None
    pset.update(1, p)
    with pytest.raises(InputError, match="0001_jw00001_cal.fits: has no WCS"):
        TweakRegStep().process(pset)


def test_gaia_offline_message(tmp_path):
    pset, _, _ = make_set(tmp_path, DITHERS[:2], ERRORS[:2])
    with pytest.raises(InputError, match="offline"):
        TweakRegStep(abs_refcat="GAIADR3").process(pset)
