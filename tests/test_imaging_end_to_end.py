"""Dithered imaging, uncal -> i2d + catalog: calwebb_detector1 -> calwebb_image2 -> calwebb_image3.

Truth comes from the simulator's ``nircam_image`` mode at 'demo' size (SUB400P, 3 dithers,
40 stars) with every dither's header pointing off by 0.5 .. 1 arcsec (and up to 0.01 deg of
roll) from where the scene was placed (``simulate(..., pointing_error_arcsec=1.0)``). The
checks (GitHub issue 6):

* tweakreg removes the pointing errors: the corrected WCSs map every exposure's true source
  pixels onto the reference exposure's true source pixels to better than 0.02 pixel RMS
  (before: several pixels);
* catalog fluxes (``aper_total_flux``, Jy) of isolated point sources with S/N > 100 agree
  with the injected ``flux_jy`` within 1 % (median), with the simulator's APCORR reference
  selected by CRDS (``R_APCORR``) and the resampling correction of
  :mod:`steps.source_catalog.catalog`;
* drizzle conserves flux: large-aperture fluxes in the i2d equal the mean of the same
  apertures in the input exposures within 0.5 % (median over isolated bright stars);
* cosmic rays left in the rates after detector1 are flagged OUTLIER by outlier_detection in
  >= 95 % of cases, and fewer than 0.1 % of the good pixels are flagged. Judged on a second
  chain (``cr_chain``: same mode, another seed, a cosmic-ray rate of :data:`CR_RATE`, so that
  more than 100 such cosmic rays are left) with the definition of
  :func:`residual_cosmic_ray_figures`: a hit pixel whose rate exceeds the true rate by more
  than ``5 sqrt(N)`` sigma, N = 3 exposures covering its sky, i.e. one that would stand out
  by more than 5 sigma in the mean of the N exposures (the mosaic);
* the cal and i2d products open and validate as stdatamodels ``ImageModel``;
* bad input is tested on small products elsewhere: exposures without sources and exposures
  that overlap no other in tests/test_image3_bad_input.py (through the calwebb_image3 recipe),
  a missing member in tests/runner/test_associations.py, mixed filters in
  tests/steps/test_resample.py.
"""
import functools
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

CONTEXT = "jwst_0001.pmap"
POINTING_ERROR = 1.0          # arcsec
SEED = 3
#: cosmic-ray hits per pixel per second of the ``cr_chain`` exposures (120 times the
#: simulator's default of 5e-5: ~12 % of the pixels of each 20-s exposure are hit, so that
#: detector1 leaves more than 100 cosmic rays large enough to judge outlier_detection on)
CR_RATE = 6e-3
CR_SEED = 11


# ---------------------------------------------------------------------------------------------
# the chain
# ---------------------------------------------------------------------------------------------
class Chain:
    """Paths of one detector1 -> image2 -> image3 run and its truth."""

    def __init__(self, sset, out):
        self.sset = sset
        self.out = Path(out)
        self.truths = [json.loads(Path(t).read_text()) for t in sset.truths]
        self.rates, self.cals, self.crfs = [], [], []
        self.i2d = self.cat = None
        self.image3 = None


def _use_cache(root):
    from tests.conftest import _reset_crds

    old = {k: os.environ.get(k) for k in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT")}
    os.environ["CRDS_PATH"] = str(root)
    os.environ.pop("CRDS_SERVER_URL", None)
    os.environ.pop("CRDS_CONTEXT", None)
    _reset_crds()
    return old


def _restore(old):
    from tests.conftest import _reset_crds

    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _reset_crds()


def run_chain(sset, out):
    """Run the three recipes on a simulated imaging set (associations copied next to products)."""
    from runner.recipe import Recipe

    c = Chain(sset, out)
    out = c.out
    out.mkdir(parents=True, exist_ok=True)
    for asn in sset.associations:
        shutil.copy(asn, out / Path(asn).name)
    d1 = Recipe.load("calwebb_detector1").run(sset.exposures, output_dir=out, crds_context=CONTEXT)
    assert all(r.status == "done" for r in d1), [r.error for r in d1]
    c.rates = [r.main_output for r in d1]
    asn2 = sorted(out.glob("*_image2_*_asn.json"))
    i2 = Recipe.load("calwebb_image2").run(asn2, output_dir=out, crds_context=CONTEXT)
    assert all(r.status == "done" for r in i2), [r.error for r in i2]
    c.cals = [r.main_output for r in i2]
    asn3 = sorted(out.glob("*_image3_*_asn.json"))
    assert len(asn3) == 1
    i3 = Recipe.load("calwebb_image3").run(asn3, output_dir=out, crds_context=CONTEXT)
    assert [r.status for r in i3] == ["done"], [r.error for r in i3]
    c.image3 = i3[0]
    outs = i3[0].outputs
    c.crfs = sorted(o for o in outs if o.endswith("_crf.fits"))
    c.i2d = i3[0].main_output
    c.cat = [o for o in outs if o.endswith("_cat.ecsv")][0]
    return c


@contextmanager
def _chain_with_cache(sset, root):
    """Build the set's local CRDS cache, point crds at it and run the chain (restored after)."""
    from simulator import crds_cache as cache, modes

    old = _use_cache(cache.build_crds_cache(root / "crds", modes.configurations([sset])))
    try:
        yield run_chain(sset, root / "products")
    finally:
        _restore(old)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from simulator import modes

    root = tmp_path_factory.mktemp("imaging_e2e")
    sset = modes.simulate("nircam_image", root / "raw", size="demo", seed=SEED,
                          pointing_error_arcsec=POINTING_ERROR)
    with _chain_with_cache(sset, root) as result:
        yield result


@pytest.fixture(scope="module")
def cr_chain(tmp_path_factory):
    """The same mode and pointing errors, another seed, :data:`CR_RATE` cosmic rays."""
    from simulator import modes, uncal

    root = tmp_path_factory.mktemp("imaging_e2e_cr")
    with pytest.MonkeyPatch.context() as mp:
        # modes.simulate has no cosmic-ray-rate argument: its exposure writer gets one
        mp.setattr(modes, "simulate_exposure",
                   functools.partial(uncal.simulate_exposure, cosmic_ray_rate=CR_RATE))
        sset = modes.simulate("nircam_image", root / "raw", size="demo", seed=CR_SEED,
                              pointing_error_arcsec=POINTING_ERROR)
    for t in sset.truths:
        meta = json.loads(Path(t).read_text())
        assert meta["n_cosmic_rays"] > 10000, meta["n_cosmic_rays"]     # the rate took effect
    with _chain_with_cache(sset, root) as result:
        yield result


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _wcs(path):
    from runner.product import Product

    return Product.open(path).wcs


def _xy(truth):
    src = truth["scene"]["sources"]
    return (np.array([s["x"] for s in src]), np.array([s["y"] for s in src]),
            np.array([s["flux_jy"] for s in src]))


def _by_root(paths, truths):
    """Order product paths like the truths (by exposure rootname)."""
    out = []
    for t in truths:
        hits = [p for p in paths if Path(p).name.startswith(t["rootname"] + "_")]
        assert len(hits) == 1, (t["rootname"], paths)
        out.append(hits[0])
    return out


def alignment_rms(chain, paths):
    """RMS (pixels) of every exposure's true source pixels, mapped through its WCS and the
    reference exposure's inverse WCS, minus the reference exposure's true source pixels.

    The reference is the exposure tweakreg left unchanged (TWKREF), else the first one.
    """
    paths = _by_root(paths, chain.truths)
    refs = [k for k, p in enumerate(paths) if fits.getheader(p).get("TWKREF")]
    ref = refs[0] if refs else 0
    wref = _wcs(paths[ref])
    xr, yr, _ = _xy(chain.truths[ref])
    ny, nx = fits.getheader(paths[ref], "SCI")["NAXIS2"], fits.getheader(paths[ref], "SCI")["NAXIS1"]
    d2 = []
    for k, p in enumerate(paths):
        if k == ref:
            continue
        xk, yk, _ = _xy(chain.truths[k])
        ra, dec = _wcs(p)(xk, yk, with_bounding_box=False)
        x, y = wref.invert(ra, dec, with_bounding_box=False)
        inside = (xk > 5) & (xk < nx - 6) & (yk > 5) & (yk < ny - 6) & (xr > 5) & (xr < nx - 6)
        inside &= (yr > 5) & (yr < ny - 6)
        d2.append(((x - xr) ** 2 + (y - yr) ** 2)[inside])
    d2 = np.concatenate(d2)
    return float(np.sqrt(np.mean(d2))), d2.size


def isolated(x, y, flux, radius):
    """True for truth sources with no other source brighter than 1 % of them within ``radius``."""
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
    np.fill_diagonal(d, np.inf)
    contaminating = (d < radius) & (flux[None, :] > 0.01 * flux[:, None])
    return ~contaminating.any(axis=1)


def matched_catalog(chain):
    """Catalog rows matched (< 0.1 arcsec) to the truth sources as the aligned WCS places them.

    Without an absolute reference catalog tweakreg aligns to the reference exposure, whose
    header pointing is off by up to 1 arcsec: the truth positions are therefore carried into
    the pipeline's frame through the reference exposure (true pixel -> its corrected WCS).
    Returns (catalog rows, truth indices, isolated flag).
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    crfs = _by_root(chain.crfs, chain.truths)
    refs = [k for k, p in enumerate(crfs) if fits.getheader(p).get("TWKREF")]
    ref = refs[0] if refs else 0
    x, y, flux = _xy(chain.truths[ref])
    ra, dec = _wcs(crfs[ref])(x, y, with_bounding_box=False)
    true_sky = SkyCoord(ra * u.deg, dec * u.deg)
    cat = QTable.read(chain.cat)
    idx, sep, _ = cat["sky_centroid"].match_to_catalog_sky(true_sky)
    ok = sep < 0.1 * u.arcsec
    iso = isolated(x, y, flux, radius=15.0)
    return cat[ok], idx[ok], iso


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------
def test_pointing_errors_recorded(chain):
    for t in chain.truths:
        p = t["pointing"]
        err = np.hypot(*p["error_arcsec"])
        assert 0.5 * POINTING_ERROR - 1e-9 <= err <= POINTING_ERROR + 1e-9
        assert p["header"]["RA_REF"] != p["true"]["RA_REF"]
    hdr = fits.getheader(chain.sset.exposures[0], "SCI")
    assert hdr["RA_REF"] == chain.truths[0]["pointing"]["header"]["RA_REF"]


def test_tweakreg_removes_pointing_errors(chain):
    before, n0 = alignment_rms(chain, chain.cals)
    after, n1 = alignment_rms(chain, chain.crfs)
    print(f"relative alignment RMS: before tweakreg {before:.3f} pix, after {after:.4f} pix "
          f"({n1} source positions)")
    assert before > 5.0                       # the injected errors are there (power of the test)
    assert n1 >= 20
    assert after < 0.02, after
    statuses = [fits.getheader(p).get("S_TWKREG") for p in chain.crfs]
    assert statuses == ["COMPLETE"] * len(chain.crfs)


def test_catalog_fluxes_match_truth(chain):
    from astropy.table import QTable

    rows, idx, iso = matched_catalog(chain)
    flux_true = np.array([s["flux_jy"] for s in chain.truths[0]["scene"]["sources"]])
    snr = np.asarray(rows["aper_total_flux"] / rows["aper_total_flux_err"])
    use = iso[idx] & (snr > 100) & ~np.asarray(rows["is_extended"])
    ratio = np.asarray(rows["aper_total_flux"])[use] / flux_true[idx[use]]
    meta = QTable.read(chain.cat).meta
    print(f"{use.sum()} isolated point sources with S/N > 100: flux/true median "
          f"{np.median(ratio):.4f} (range {ratio.min():.4f} .. {ratio.max():.4f}); aperture "
          f"correction {meta['apcorr']:.4f} ({meta['apcorr_method']}, {meta['apcorr_reference']}, "
          f"growth {meta['apcorr_growth']:.4f} to {meta['apcorr_growth_radius_pix']:.1f} pix)")
    # the APCORR reference was selected offline by CRDS and used, with the resampling correction
    assert fits.getheader(chain.i2d).get("R_APCORR", "").startswith("crds://jwst_nircam_apcorr_")
    assert meta["apcorr_reference"].startswith("jwst_nircam_apcorr_")
    assert meta["apcorr_method"] == "reference+growth" and meta["apcorr_stars"] >= 3
    assert use.sum() >= 5
    assert abs(np.median(ratio) - 1) < 0.01, np.median(ratio)


def test_catalog_astrometry(chain):
    """Isolated sources sit where the aligned WCS puts the truth (to 0.05 pixel RMS)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    crfs = _by_root(chain.crfs, chain.truths)
    rows, idx, iso = matched_catalog(chain)
    x, y, _ = _xy(chain.truths[0])
    ra, dec = _wcs(crfs[0])(x, y, with_bounding_box=False)
    sep = rows["sky_centroid"].separation(SkyCoord(ra[idx] * u.deg, dec[idx] * u.deg))
    keep = iso[idx]
    rms_mas = float(np.sqrt(np.mean(sep[keep].to_value(u.mas) ** 2)))
    print(f"catalog astrometric RMS (isolated, {keep.sum()} sources): {rms_mas:.2f} mas")
    assert keep.sum() >= 10
    assert rms_mas < 0.05 * 31.0


def _aperture_flux(data, x, y, r, r_in, r_out):
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

    good = np.where(np.isfinite(data), data, 0.0)
    ap = CircularAperture(np.column_stack([x, y]), r)
    s = np.asarray(aperture_photometry(good, ap, method="exact")["aperture_sum"], float)
    bkg = np.asarray(ApertureStats(good, CircularAnnulus(np.column_stack([x, y]), r_in, r_out)).median)
    return s - bkg * ap.area


def test_drizzle_conserves_flux(chain):
    """i2d flux (MJy/sr x output PIXAR_SR) of isolated bright stars vs the input exposures'."""
    with fits.open(chain.i2d) as h:
        i2d, pix_out = h["SCI"].data.astype(float), h[0].header["PIXAR_SR"]
    wi2d = _wcs(chain.i2d)
    crfs = _by_root(chain.crfs, chain.truths)
    r, r_in, r_out = 12.0, 15.0, 22.0
    per_exp = []
    for k, p in enumerate(crfs):
        x, y, flux = _xy(chain.truths[k])
        with fits.open(p) as h:
            sci = np.where((h["DQ"].data & 1) == 0, h["SCI"].data, np.nan).astype(float)
            pix_in = h[0].header["PIXAR_SR"]
        # outlier pixels: filled with the local median so that they do not bias the sum
        per_exp.append(_aperture_flux(np.where(np.isfinite(sci), sci, np.nanmedian(sci)),
                                      x, y, r, r_in, r_out) * pix_in * 1e6)
    x0, y0, flux = _xy(chain.truths[0])
    ra, dec = _wcs(crfs[0])(x0, y0, with_bounding_box=False)
    xo, yo = wi2d.invert(ra, dec, with_bounding_box=False)
    f_out = _aperture_flux(i2d, xo, yo, r, r_in, r_out) * pix_out * 1e6
    f_in = np.mean(per_exp, axis=0)
    ny, nx = i2d.shape
    # neighbours fall in the same apertures of the i2d and of the inputs: mild isolation only
    ok = isolated(x0, y0, flux, r_out) & (flux > np.percentile(flux, 40))
    for arr_x, arr_y in [(xo, yo)] + [(_xy(t)[0], _xy(t)[1]) for t in chain.truths]:
        ok &= (arr_x > r_out) & (arr_x < nx - 1 - r_out) & (arr_y > r_out) & (arr_y < ny - 1 - r_out)
    ratio = f_out[ok] / f_in[ok]
    print(f"drizzle: i2d / input flux median {np.median(ratio):.5f} over {ok.sum()} stars "
          f"(range {ratio.min():.4f} .. {ratio.max():.4f})")
    assert ok.sum() >= 3
    assert abs(np.median(ratio) - 1) < 0.005


def covered_by_all(chain, k, shape, margin=2):
    """Pixels of exposure ``k`` whose sky every other exposure sees (``margin`` pixels inside).

    Through the aligned (crf) WCSs: the cal headers are off by up to POINTING_ERROR (~30
    pixels), which would count pixels near the edges as covered where an exposure is missing.
    """
    crfs = _by_root(chain.crfs, chain.truths)
    ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    ra, dec = _wcs(crfs[k])(x.ravel().astype(float), y.ravel().astype(float), with_bounding_box=False)
    ok = np.ones(x.size, bool)
    for j, p in enumerate(crfs):
        if j == k:
            continue
        xj, yj = _wcs(p).invert(ra, dec, with_bounding_box=False)
        ok &= (xj > margin) & (xj < nx - 1 - margin) & (yj > margin) & (yj < ny - 1 - margin)
    return ok.reshape(shape)


def residual_cosmic_ray_figures(chain):
    """Cosmic rays left after detector1 and what outlier_detection flagged, against the truth.

    For each exposure, from its ramp truth (every injected hit, the true rate) and its rate and
    crf products:

    * usable pixel: not DO_NOT_USE in the rate, finite, ERR > 0, never saturated;
    * excess: ``(rate - true rate) / ERR`` of the rate product;
    * a residual cosmic ray: a hit pixel, usable, whose sky every exposure covers
      (:func:`covered_by_all`; elsewhere a median of 1-2 values cannot reject anything), with
      an excess above ``5 sqrt(N)`` (N = the number of exposures): averaged with the N - 1
      others it would still be a > 5 sigma spike in the mosaic. Hits with a smaller excess
      (5 .. 5 sqrt(N) sigma: at the noise level of the comparison) are counted separately;
    * good pixel: usable, no hit in it or its 8 neighbours, excess below 5 sigma.

    Returns
    -------
    dict
        ``n_left``, ``n_flagged`` (residual cosmic rays; flagged = OUTLIER in the crf),
        ``n_weak``, ``n_weak_flagged`` (excess 5 .. 5 sqrt(N) sigma), ``n_good``, ``n_false``,
        ``n_hits``, ``n_exposures``.
    """
    from simulator.ramps import RampTruth

    crfs = _by_root(chain.crfs, chain.truths)
    rates = _by_root(chain.rates, chain.truths)
    n_exp = len(chain.truths)
    strong = 5.0 * np.sqrt(n_exp)
    out = dict(n_left=0, n_flagged=0, n_weak=0, n_weak_flagged=0, n_good=0, n_false=0, n_hits=0,
               n_exposures=n_exp)
    for k, t in enumerate(chain.truths):
        truth = RampTruth.load(Path(chain.sset.ramp_truths[k]))
        with fits.open(rates[k]) as h:
            rate, err, rdq = h["SCI"].data, h["ERR"].data, h["DQ"].data
        with fits.open(crfs[k]) as h:
            dq = h["DQ"].data
        true_rate = truth.rate_dn.mean(axis=0)
        usable = ((rdq & 1) == 0) & np.isfinite(rate) & (err > 0) & (truth.saturated_group < 0).all(axis=0)
        hit = np.zeros(rate.shape, bool)
        cr = truth.cosmic_rays
        hit[cr["y"], cr["x"]] = True
        out["n_hits"] += len(cr)
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.abs(rate - true_rate) / err
        candidates = hit & usable & covered_by_all(chain, k, rate.shape)
        outlier = (dq & 16) > 0
        left = candidates & (excess > strong)
        weak = candidates & (excess > 5) & ~left
        out["n_left"] += int(left.sum())
        out["n_flagged"] += int((left & outlier).sum())
        out["n_weak"] += int(weak.sum())
        out["n_weak_flagged"] += int((weak & outlier).sum())
        near = hit.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= np.roll(np.roll(hit, dy, 0), dx, 1)
        good = usable & ~near & (excess < 5)
        out["n_good"] += int(good.sum())
        out["n_false"] += int((good & outlier).sum())
    return out


def _print_cr(label, f):
    frac = f["n_flagged"] / max(f["n_left"], 1)
    weak = f["n_weak_flagged"] / max(f["n_weak"], 1)
    print(f"{label}: {f['n_hits']} cosmic-ray hits; left after detector1 above "
          f"{5 * np.sqrt(f['n_exposures']):.2f} sigma: {f['n_left']}, flagged {f['n_flagged']} "
          f"({100 * frac:.1f} %); weaker (5 .. {5 * np.sqrt(f['n_exposures']):.2f} sigma): "
          f"{f['n_weak']}, flagged {f['n_weak_flagged']} ({100 * weak:.1f} %); good pixels flagged "
          f"{f['n_false']} of {f['n_good']} ({100 * f['n_false'] / max(f['n_good'], 1):.4f} %)")
    return frac, weak


def test_outlier_detection_flags_residual_cosmic_rays(cr_chain):
    f = residual_cosmic_ray_figures(cr_chain)
    frac, weak = _print_cr("cosmic-ray-rich chain", f)
    assert f["n_left"] >= 100                  # enough events to judge 95 % (+-2 %)
    assert frac >= 0.95, frac
    assert f["n_false"] / f["n_good"] < 0.001
    # the weaker residuals sit at the comparison's noise level (3 exposures: the median's own
    # noise is ~0.5 sigma): most, not all, are flagged; jwst's plain median flags ~half
    assert f["n_weak"] >= 100 and weak >= 0.7, weak


def test_outlier_detection_at_the_nominal_cosmic_ray_rate(chain):
    f = residual_cosmic_ray_figures(chain)
    frac, _ = _print_cr("nominal chain", f)
    assert f["n_good"] > 100_000
    assert f["n_false"] / f["n_good"] < 0.001
    assert f["n_flagged"] == f["n_left"]


def test_products_validate_with_stdatamodels(chain):
    from stdatamodels.jwst.datamodels import ImageModel

    for path in chain.cals + [chain.i2d]:
        with ImageModel(path) as m:
            m.validate()
            assert m.data.ndim == 2 and m.data.shape == m.err.shape
            assert m.meta.bunit_data == "MJy/sr"
            assert m.meta.wcsinfo.ra_ref is not None and m.meta.photometry.pixelarea_steradians > 0
            # meta.wcs is the gwcs object (read from the ASDF extension, as for archive files)
            ours = _wcs(path)
            np.testing.assert_allclose(m.meta.wcs(10.0, 20.0), ours(10.0, 20.0), rtol=0, atol=1e-12)
            assert m.meta.wcs.output_frame.name == "world"
        from astropy.wcs import WCS

        ra, dec = WCS(fits.getheader(path, "SCI")).all_pix2world(10.0, 10.0, 0)
        assert np.isfinite(ra) and np.isfinite(dec)
