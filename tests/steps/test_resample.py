"""Tests of resample (drizzle onto a TAN grid) against an analytic scene with known truth.

The helpers here (``make_wcs``, ``make_cal``, ``make_set``) build dithered ``_cal`` images of
Gaussian point sources with a gwcs ``detector -> v2v3 -> world``; test_outlier_detection and
benchmarks/bench_image3.py reuse them.
"""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from runner import Product
from runner.association import Member
from runner.product_set import ProductSet

RA0, DEC0 = 80.0, -69.5
PSCALE = 0.063                    # arcsec / pixel
ARCSEC2_TO_SR = (np.pi / 180.0 / 3600.0) ** 2


# -- synthetic data --------------------------------------------------------------------------
def make_wcs(shape, ra=RA0, dec=DEC0, roll=20.0, pscale=PSCALE, distortion=0.0):
    """gwcs detector -> v2v3 (arcsec) -> world (ICRS deg), TAN about (ra, dec) at the centre.

    ``distortion``: quadratic term, fraction of a pixel at the image edge.
    """
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import WCS, coordinate_frames as cf

    ny, nx = shape
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    shift = models.Shift(-cx) & models.Shift(-cy)
    if distortion:
        k = distortion / (max(nx, ny) / 2.0) ** 2
        px = models.Polynomial2D(2, c1_0=1.0, c2_0=k, c0_2=0.5 * k)
        py = models.Polynomial2D(2, c0_1=1.0, c1_1=k)
        poly = models.Mapping((0, 1, 0, 1)) | (px & py)
        det2v2v3 = shift | poly | (models.Scale(pscale) & models.Scale(pscale))
    else:
        det2v2v3 = shift | (models.Scale(pscale) & models.Scale(pscale))
    t = np.radians(roll)
    rot = np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]]) / 3600.0
    v2v3_2world = (models.AffineTransformation2D(matrix=rot, translation=[0, 0]) | models.Pix2Sky_TAN()
                   | models.RotateNative2Celestial(ra, dec, 180.0))
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    v2v3 = cf.Frame2D(name="v2v3", axes_order=(0, 1), unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3"))
    world = cf.CelestialFrame(reference_frame=coord.ICRS(), name="world", unit=(u.deg, u.deg))
    w = WCS([(detector, det2v2v3), (v2v3, v2v3_2world), (world, None)])
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return w


def star_list(n=12, seed=1, spacing_arcsec=1.0, flux_range=(1e-9, 5e-9)):
    """Sources (ra, dec, total flux in MJy; default 1-5 mJy) on a jittered grid around the field centre.

    ``spacing_arcsec`` keeps them apart (apertures of 7 pixels do not overlap).
    """
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    gx, gy = np.meshgrid(np.arange(side) - (side - 1) / 2, np.arange(side) - (side - 1) / 2)
    gx, gy = gx.ravel()[:n], gy.ravel()[:n]
    dx = (gx * spacing_arcsec + rng.uniform(-0.1, 0.1, n)) / 3600.0
    dy = (gy * spacing_arcsec + rng.uniform(-0.1, 0.1, n)) / 3600.0
    flux = rng.uniform(*flux_range, n)
    return np.c_[RA0 + dx / np.cos(np.radians(DEC0)), DEC0 + dy, flux]


def render(wcs, shape, stars, fwhm_arcsec=0.14, sky=0.0):
    """Surface brightness (MJy/sr) at pixel centres of Gaussian sources."""
    from steps.resample.output_grid import _tangent_offsets, pixel_to_world

    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    ra, dec = pixel_to_world(wcs, x, y)
    sigma = fwhm_arcsec / 2.3548
    img = np.full(shape, sky, dtype=np.float64)
    for sra, sdec, flux in stars:
        xi, eta = _tangent_offsets(ra, dec, sra, sdec)
        r2 = (xi * 3600) ** 2 + (eta * 3600) ** 2
        sb = flux / (2 * np.pi * sigma ** 2) / ARCSEC2_TO_SR    # MJy/sr
        img += sb * np.exp(-0.5 * r2 / sigma ** 2)
    return img


def make_cal(shape, offset_pix=(0.0, 0.0), stars=None, *, seed=0, noise=0.0, roll=20.0,
             distortion=0.0, name="jw01000001001_01101_00001_nrca1", sky=0.0, rnoise_var=None,
             exptime=100.0):
    """A ``_cal`` image Product dithered by ``offset_pix`` (detector pixels) from the centre."""
    ny, nx = shape
    t = np.radians(roll)
    # offset of the pointing on the sky, so a source moves by -offset on the detector
    dxi = (-np.cos(t) * offset_pix[0] + np.sin(t) * offset_pix[1]) * PSCALE / 3600.0
    deta = (np.sin(t) * offset_pix[0] + np.cos(t) * offset_pix[1]) * PSCALE / 3600.0
    ra = RA0 + dxi / np.cos(np.radians(DEC0))
    dec = DEC0 + deta
    wcs = make_wcs(shape, ra=ra, dec=dec, roll=roll, distortion=distortion)
    stars = star_list() if stars is None else stars
    sci = render(wcs, shape, stars, sky=sky)
    rng = np.random.default_rng(seed)
    if noise:
        sci = sci + rng.normal(0, noise, shape)
    from steps.resample.output_grid import mean_pixel_area

    pixar_sr = mean_pixel_area(wcs, shape)     # photometric pixel area = mean WCS pixel area
    meta = fits.Header()
    meta["TELESCOP"] = "JWST"
    meta["INSTRUME"] = "NIRCAM"
    meta["DETECTOR"] = "NRCA1"
    meta["EXP_TYPE"] = "NRC_IMAGE"
    meta["TSOVISIT"] = False
    meta["EFFEXPTM"] = exptime
    meta["EXPSTART"] = 60000.0 + seed * 0.01
    meta["EXPEND"] = 60000.001 + seed * 0.01
    meta["PIXAR_SR"] = pixar_sr
    meta["PIXAR_A2"] = pixar_sr / ARCSEC2_TO_SR
    meta["EXPOSURE"] = seed + 1
    sci_hdr = fits.Header()
    sci_hdr["BUNIT"] = "MJy/sr"
    err_var = max(noise, 0.01) ** 2
    rnoise_var = err_var / 2 if rnoise_var is None else rnoise_var
    arrays = {
        "SCI": sci.astype(np.float32),
        "ERR": np.full(shape, np.sqrt(err_var), np.float32),
        "DQ": np.zeros(shape, np.uint32),
        "VAR_POISSON": np.full(shape, err_var - rnoise_var, np.float32),
        "VAR_RNOISE": np.full(shape, rnoise_var, np.float32),
        "VAR_FLAT": np.zeros(shape, np.float32),
        "AREA": np.ones(shape, np.float32),
    }
    return Product("image", meta, arrays, {}, {"SCI": sci_hdr}, filename=f"{name}_cal.fits", wcs=wcs)


DITHERS = [(0.0, 0.0), (10.5, 3.25), (-6.25, 12.5), (3.75, -9.5)]


def make_set(tmp_path, products, name="jw01000-o001_t001_nircam_clear-f200w"):
    """Save products into ``tmp_path`` and return a ProductSet of them (science members)."""
    members = []
    for prod in products:
        path = tmp_path / prod.filename
        prod.save(path)
        members.append(Member(path, "science"))
    s = ProductSet(name, members)
    s.working_dir = tmp_path / "work"
    return s


def centroid(img, x0, y0, half=5):
    """First moment of ``img`` in a (2*half+1)^2 box around (x0, y0)."""
    xi, yi = int(round(x0)), int(round(y0))
    box = img[yi - half:yi + half + 1, xi - half:xi + half + 1]
    yy, xx = np.mgrid[yi - half:yi + half + 1, xi - half:xi + half + 1]
    w = np.nan_to_num(box)
    return (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum(), w.sum()


# -- tests -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dithered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resample")
    stars = star_list()
    prods = [make_cal((96, 96), off, stars, seed=i, distortion=0.3, name=f"jw01000001001_01101_0000{i + 1}_nrca1")
             for i, off in enumerate(DITHERS)]
    return make_set(tmp, prods), stars


def run_resample(pset, **kw):
    from steps.resample.step import ResampleStep

    step = ResampleStep(**kw)
    return step.process(pset), step


def test_flux_conserved_and_positions(dithered):
    pset, stars = dithered
    out, _ = run_resample(pset)
    grid_wcs = out.wcs
    from steps.resample.output_grid import world_to_pixel

    area = out.meta["PIXAR_SR"]
    x, y = world_to_pixel(grid_wcs, stars[:, 0], stars[:, 1])
    errs, dpos = [], []
    for (sra, sdec, flux), xs, ys in zip(stars, x, y):
        cx, cy, total = centroid(out.data, xs, ys, half=7)
        errs.append(total * area / flux - 1)
        dpos.append(np.hypot(cx - xs, cy - ys))
    errs, dpos = np.array(errs), np.array(dpos)
    # truth: every source's flux within 0.5 %, its position within 0.05 output pixel
    assert np.max(np.abs(errs)) < 0.005, errs
    assert np.max(dpos) < 0.05, dpos
    # and the total over the mosaic (all sources lie inside every input)
    assert abs(np.nansum(out.data) * area / stars[:, 2].sum() - 1) < 0.005


def test_output_arrays_wht_con(dithered):
    pset, _ = dithered
    out, step = run_resample(pset, weight_type="ivm")
    for ext in ("SCI", "ERR", "WHT", "CON", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        assert ext in out.arrays, ext
    assert out.arrays["CON"].dtype == np.int32 and out.arrays["CON"].ndim == 3
    con = out.arrays["CON"][0]
    nbits = np.zeros(con.shape, int)
    for k in range(4):
        nbits += (con >> k) & 1
    wht = out.arrays["WHT"]
    # ivm weight of one input pixel = 1/VAR_RNOISE = 2e4; pixfrac 1, same scale -> WHT = 2e4 * n
    inside = nbits > 0
    full = np.zeros_like(inside)
    # pixels fully covered: compare where the neighbours share the same context
    same = (con == np.roll(con, 1, 0)) & (con == np.roll(con, -1, 0)) & \
           (con == np.roll(con, 1, 1)) & (con == np.roll(con, -1, 1))
    full = inside & same
    np.testing.assert_allclose(wht[full], 2e4 * nbits[full], rtol=0.02)
    assert nbits.max() == 4 and (nbits == 4).sum() > 1000
    assert np.all(np.isnan(out.data[~inside]))
    assert np.all(wht[~inside] == 0)
    # keywords
    assert out.meta["NDRIZ"] == 4 and out.meta["PIXFRAC"] == 1.0 and out.meta["KERNEL"] == "square"
    hdr = out.ext_headers["SCI"]
    assert hdr["CTYPE1"] == "RA---TAN" and hdr["BUNIT"] == "MJy/sr"
    # the FITS TAN header and the gwcs agree
    from astropy.wcs import WCS

    fw = WCS(hdr)
    ra, dec = out.wcs(10.0, 20.0)
    x, y = fw.world_to_pixel_values(ra, dec)
    assert abs(x - 10) < 1e-6 and abs(y - 20) < 1e-6


def test_error_propagation(dithered):
    """Variance of a 4-input mean with equal weights: VAR / 4 (square kernel, no pixel overlap shares)."""
    pset, _ = dithered
    out, _ = run_resample(pset, weight_type="ivm")
    con = out.arrays["CON"][0]
    full = con == 15
    same = full & np.roll(full, 1, 0) & np.roll(full, -1, 0) & np.roll(full, 1, 1) & np.roll(full, -1, 1)
    vr = out.arrays["VAR_RNOISE"][same]
    # inputs: VAR_RNOISE = 0.5e-4 (err 0.01, read noise half the variance); drizzled with
    # squared weights, the variance of a 4-input mean is VAR/4 where one input pixel covers
    # the output pixel, less where several input pixels share it
    assert np.all(vr > 0) and np.median(vr) < 0.5e-4 / 4 * 1.01 and np.median(vr) > 0.5e-4 / 16
    np.testing.assert_allclose(out.err[same] ** 2,
                               out.arrays["VAR_RNOISE"][same] + out.arrays["VAR_POISSON"][same]
                               + out.arrays["VAR_FLAT"][same], rtol=1e-4)


def test_dq_excluded(tmp_path):
    stars = np.zeros((0, 3))
    a = make_cal((64, 64), (0, 0), stars, seed=0, name="jw01000001001_01101_00001_nrca1", sky=1.0)
    b = make_cal((64, 64), (0, 0), stars, seed=1, name="jw01000001001_01101_00002_nrca1", sky=1.0)
    b.data[30:34, 30:34] = 1e6
    b.dq[30:34, 30:34] = 1          # DO_NOT_USE: must not reach the mosaic
    out, _ = run_resample(make_set(tmp_path, [a, b]))
    np.testing.assert_allclose(out.data[5:-5, 5:-5], 1.0, rtol=1e-5)


def test_single_exposure_i2d(tmp_path):
    from steps.resample.step import ResampleStep

    stars = star_list(n=5)
    cal = make_cal((80, 80), (0, 0), stars)
    step = ResampleStep()
    returned = step.process(cal)
    assert returned is cal                       # image2: the cal product stays the main output
    (suffix, i2d, root), = step._extra_outputs
    assert suffix == "i2d" and root is None and i2d.rootname == cal.rootname
    assert i2d.meta["NDRIZ"] == 1
    from steps.resample.output_grid import world_to_pixel

    x, y = world_to_pixel(i2d.wcs, stars[:, 0], stars[:, 1])
    for (sra, sdec, flux), xs, ys in zip(stars, x, y):
        cx, cy, total = centroid(i2d.data, xs, ys, half=7)
        assert abs(total * i2d.meta["PIXAR_SR"] / flux - 1) < 0.005
        assert np.hypot(cx - xs, cy - ys) < 0.05
    # rotation=None keeps the detector orientation: the output is the input grid
    path = tmp_path / "x_i2d.fits"
    i2d.save(path)
    back = Product.open(path)
    assert back.wcs is not None and back.arrays["CON"].shape[0] == 1


def test_north_up_and_pixel_scale_ratio(dithered):
    pset, stars = dithered
    out, _ = run_resample(pset, rotation=0.0, pixel_scale_ratio=0.5)
    hdr = out.ext_headers["SCI"]
    assert abs(hdr["CD1_2"]) < 1e-12 and abs(hdr["CD2_1"]) < 1e-12
    assert hdr["CD1_1"] < 0 and hdr["CD2_2"] > 0
    np.testing.assert_allclose(hdr["CD2_2"] * 3600, PSCALE * 0.5, rtol=1e-3)
    from steps.resample.output_grid import world_to_pixel

    x, y = world_to_pixel(out.wcs, stars[:, 0], stars[:, 1])
    area = out.meta["PIXAR_SR"]
    for (sra, sdec, flux), xs, ys in zip(stars, x, y):
        cx, cy, total = centroid(out.data, xs, ys, half=12)
        assert abs(total * area / flux - 1) < 0.005
        assert np.hypot(cx - xs, cy - ys) < 0.05


def test_pixel_scale_records_its_ratio(dithered):
    """With ``pixel_scale`` (arcsec) PXSCLRT is the resulting output/input scale ratio (jwst)."""
    pset, _ = dithered
    out, _ = run_resample(pset, pixel_scale=2 * PSCALE)
    np.testing.assert_allclose(out.meta["PXSCLRT"], 2.0, rtol=2e-3)
    np.testing.assert_allclose(out.meta["PIXAR_A2"], (2 * PSCALE) ** 2, rtol=2e-3)


def test_intensity_scale_conserves_flux(tmp_path):
    """Data calibrated with a PIXAR_SR 10 % off the WCS pixel area are rescaled (jwst iscale)."""
    stars = star_list(n=4)
    cal = make_cal((64, 64), (0, 0), stars)
    cal.meta["PIXAR_SR"] = cal.meta["PIXAR_SR"] * 1.1
    cal.data = cal.data / np.float32(1.1)
    out, _ = run_resample(make_set(tmp_path, [cal]))
    total = np.nansum(out.data) * out.meta["PIXAR_SR"]
    assert abs(total / stars[:, 2].sum() - 1) < 0.005


def test_good_bits_parsing():
    from steps.resample.drizzle_images import build_mask, interpret_bit_flags

    assert interpret_bit_flags("~DO_NOT_USE+NON_SCIENCE") == (~(1 | 512)) & 0xFFFFFFFF
    assert interpret_bit_flags("4, 16") == 20 and interpret_bit_flags(None) == 0
    dq = np.array([0, 1, 4, 512, 2048], np.uint32)
    np.testing.assert_array_equal(build_mask(dq, "~DO_NOT_USE+NON_SCIENCE"), [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(build_mask(dq, 0), [1, 0, 0, 0, 0])


def test_members_of_different_filters_are_refused(tmp_path):
    a = make_cal((60, 60), name="jw01000001001_01101_00001_nrca1")
    b = make_cal((60, 60), (3.0, 2.0), seed=1, name="jw01000001001_01101_00002_nrca1")
    a.meta["FILTER"], b.meta["FILTER"] = "F200W", "F150W"
    pset = make_set(tmp_path, [a, b])
    from runner.errors import InputError

    with pytest.raises(InputError, match="members mix instruments or filters .*F200W.*F150W"):
        run_resample(pset)


def test_failed_stage3_leaves_no_outputs_or_working_files(tmp_path):
    import json

    from runner.errors import InputError
    from runner.recipe import Recipe

    a = make_cal((60, 60), name="jw01000001001_01101_00001_nrca1")
    b = make_cal((60, 60), (3.0, 2.0), seed=1, name="jw01000001001_01101_00002_nrca1")
    a.meta["FILTER"], b.meta["FILTER"] = "F200W", "F150W"
    for prod in (a, b):
        prod.save(tmp_path / prod.filename)
    asn = tmp_path / "mixed_image3_asn.json"
    asn.write_text(json.dumps({"asn_type": "image3", "products": [{"name": "mixed", "members": [
        {"expname": a.filename, "exptype": "science"}, {"expname": b.filename, "exptype": "science"}]}]}))
    recipe = Recipe.from_dict({"pipeline": "calwebb_image3", "stage": 3, "steps": ["resample"],
                               "output_suffix": "i2d"}, name="resample_only")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="members mix instruments or filters"):
        recipe.run([asn], output_dir=out, apply_crds_pars=False)
    assert not out.exists() or not any(out.rglob("*"))
