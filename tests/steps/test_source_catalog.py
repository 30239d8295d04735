"""source_catalog: isolated point sources of known flux on an i2d-like image (MJy/sr)."""
import numpy as np
import pytest
from astropy.table import Table

from runner.errors import InputError
from steps.source_catalog.catalog import make_source_catalog
from steps.source_catalog.step import SourceCatalogStep
from steps.tweakreg.simulate import gaussian_scene, make_gwcs, make_image_product

SHAPE = (128, 128)
PIXAR_SR = (0.1 / 206264.806) ** 2
PSF_SIGMA = 1.3


def scene(seed=0, noise=0.002, sky=0.05):
    rng = np.random.default_rng(seed)
    g = np.arange(4) * 28 + 22.0
    gx, gy = np.meshgrid(g, g)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    jy = np.exp(rng.uniform(np.log(2e-6), np.log(2e-5), gx.size))         # total flux, Jy
    img_flux = jy / (PIXAR_SR * 1e6)                                        # MJy/sr x pixel
    img = gaussian_scene(SHAPE, x, y, img_flux, PSF_SIGMA) + sky + rng.normal(0, noise, SHAPE)
    peak_snr = img_flux.min() / (2 * np.pi * PSF_SIGMA ** 2) / noise
    assert peak_snr > 100
    return img, x, y, jy


def _match(cat, x, y):
    d = np.hypot(np.asarray(cat["xcentroid"])[:, None] - x[None], np.asarray(cat["ycentroid"])[:, None] - y[None])
    return d.argmin(axis=0), d.min(axis=0)


def test_fluxes_and_positions_against_truth():
    img, x, y, jy = scene()
    cat, segm, info = make_source_catalog(img, pixar_sr=PIXAR_SR, npixels=10)
    assert len(cat) == len(x)
    k, dist = _match(cat, x, y)
    assert np.max(dist) < 0.05, dist.max()
    ratio = np.asarray(cat["aper_total_flux"])[k] / jy
    assert abs(np.median(ratio) - 1) < 0.01, np.median(ratio)
    assert np.all(np.abs(ratio - 1) < 0.03)
    kron = np.asarray(cat["kron_flux"])[k] / jy
    assert abs(np.median(kron) - 1) < 0.02
    assert abs(info["psf_fwhm"] / (2.3548 * np.sqrt(PSF_SIGMA ** 2 + 1 / 12)) - 1) < 0.02
    assert not np.any(cat["is_extended"])
    assert segm.shape == SHAPE and segm.max() == len(x)


def test_step_emits_catalog_and_segmentation(tmp_path):
    img, x, y, jy = scene(seed=1)
    w = make_gwcs(SHAPE, pixel_scale=0.1)
    prod = make_image_product(w, [], [], [], shape=SHAPE, pixar_sr=PIXAR_SR, filename="jw_test_i2d.fits")
    prod.data = img.astype(np.float32)
    prod.arrays["WHT"] = np.ones(SHAPE, np.float32)
    step = SourceCatalogStep(npixels=10)
    out = step.process(prod)
    assert out is prod
    emitted = {sfx: obj for sfx, obj, _ in step._extra_outputs}
    cat = emitted["cat"]
    assert cat.file_extension == ".ecsv"
    path = cat.save(tmp_path / "x_cat.ecsv")
    t = Table.read(path)
    for col in ("label", "xcentroid", "ycentroid", "sky_centroid", "aper_bkg_flux", "aper30_flux",
                "aper50_flux", "aper70_flux", "aper_total_flux", "isophotal_flux",
                "isophotal_flux_err", "is_extended", "CI_50_30", "CI_70_50"):
        assert col in t.colnames, col
    # no APCORR reference (N/A): apertures and correction measured on the image, recorded
    assert cat.table.meta["apcorr_reference"] is None
    assert cat.table.meta["apcorr_method"] in ("curve_of_growth", "gaussian")
    k, dist = _match(cat.table, x, y)
    ra, dec = w(x, y)
    sc = cat.table["sky_centroid"][k]
    sep = np.hypot((sc.ra.deg - ra) * np.cos(np.deg2rad(dec)), sc.dec.deg - dec) * 3600 / 0.1
    assert np.max(sep) < 0.05
    segm = emitted["segm"]
    assert segm.arrays["SCI"].dtype == np.int32 and segm.arrays["SCI"].max() == len(x)
    segm.save(tmp_path / "x_segm.fits")


def test_empty_image_gives_empty_catalog():
    rng = np.random.default_rng(3)
    cat, segm, _ = make_source_catalog(rng.normal(0, 1, SHAPE), pixar_sr=PIXAR_SR)
    assert len(cat) == 0 and segm.max() == 0


def test_missing_pixar_names_file():
    w = make_gwcs(SHAPE, pixel_scale=0.1)
    prod = make_image_product(w, [], [], [], shape=SHAPE, filename="jw_nopix_i2d.fits")
    del prod.meta["PIXAR_SR"], prod.meta["PIXAR_A2"]
    with pytest.raises(InputError, match="jw_nopix_i2d.fits: missing keyword PIXAR_SR"):
        SourceCatalogStep().process(prod)


# -- APCORR reference (CRDS format, jwst's use) ---------------------------------------------
ARCSEC_PER_RAD = 206264.806


@pytest.fixture(scope="module")
def nircam_apcorr():
    """The simulator's NRCA1 APCORR table (F200W / CLEAR) and its PSF."""
    from simulator.stage2_references import apcorr_table, imaging_psf

    return apcorr_table("NRCA1", [("F200W", "CLEAR")]), imaging_psf("NRCA1", "F200W", "CLEAR")


def test_apcorr_row_selection():
    from steps.source_catalog.reference_data import select_apcorr_rows

    dtype = [("filter", "S12"), ("subarray", "S17"), ("eefraction", "<f4"), ("radius", "<f4"),
             ("apcorr", "<f4"), ("skyin", "<f4"), ("skyout", "<f4")]
    table = np.array([("F770W", "FULL", 0.5, 1.5, 2.0, 9, 14), ("F770W", "SUB64", 0.5, 1.5, 2.0, 9, 14),
                      ("F560W", "FULL", 0.5, 1.2, 2.0, 8, 13)], dtype=dtype)
    rows = select_apcorr_rows(table, "MIRI", "F770W", None, "SUB64")
    assert len(rows) == 1 and rows["subarray"][0] == b"SUB64"
    with pytest.raises(ValueError, match="FILTER=F1000W, SUBARRAY=FULL"):
        select_apcorr_rows(table, "MIRI", "F1000W", None, "FULL")
    assert len(select_apcorr_rows(table, "FGS")) == 3           # FGS: every row
    with pytest.raises(ValueError, match="not an imaging instrument"):
        select_apcorr_rows(table, "NIRSPEC", "F770W")


def test_apcorr_aperture_parameters(nircam_apcorr):
    from steps.source_catalog.reference_data import aperture_parameters, select_apcorr_rows

    table, _ = nircam_apcorr
    rows = select_apcorr_rows(table, "NIRCAM", "F200W", "CLEAR")
    assert len(rows) == len(table)
    with pytest.raises(ValueError, match="FILTER=F090W, PUPIL=CLEAR"):
        select_apcorr_rows(table, "NIRCAM", "F090W", "CLEAR")
    p = aperture_parameters(rows, (30, 50, 70), 1.0)
    for ee, r, c in zip((0.3, 0.5, 0.7), p["radii"], p["apcorr"]):
        row = rows[np.isclose(rows["eefraction"], ee)]
        assert r == pytest.approx(float(row["radius"][0])) and c == pytest.approx(float(row["apcorr"][0]))
    assert p["radii"][0] < p["radii"][1] < p["radii"][2]
    assert p["bkg_annulus"] == (8.0, 13.0)
    assert p["growth"][0] == 7.0                       # largest radius at least 1 pixel inside skyin
    half = aperture_parameters(rows, (30, 50, 70), 0.5)    # i2d pixels half the native size
    assert half["radii"] == pytest.approx([2 * r for r in p["radii"]])
    assert half["bkg_annulus"] == (16.0, 26.0) and half["growth"][0] == 14.0
    with pytest.raises(ValueError, match="valid aperture_ee values"):
        aperture_parameters(rows, (30, 50, 75))


def _airy_scene(psf, seed=4, shape=(300, 300), noise=0.002, sky=0.05):
    """Stars rendered exactly as the simulator renders them (pixel-integrated Airy), in MJy/sr."""
    from simulator.scenes import render_point_sources

    rng = np.random.default_rng(seed)
    g = np.arange(4) * 64 + 54.0
    gx, gy = np.meshgrid(g, g)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    jy = np.exp(rng.uniform(np.log(2e-6), np.log(2e-5), gx.size))
    img, _ = render_point_sources(shape, x, y, jy / (PIXAR_SR * 1e6), psf, sky)
    return img + rng.normal(0, noise, shape), x, y, jy


def _median_ratio(cat, x, y, jy):
    k, dist = _match(cat, x, y)
    assert np.max(dist) < 0.2
    return float(np.median(np.asarray(cat["aper_total_flux"])[k] / jy))


def test_apcorr_reference_gives_total_flux(nircam_apcorr):
    """With the APCORR of the PSF the image was rendered with, aper_total_flux is the total."""
    from steps.source_catalog.reference_data import aperture_parameters, select_apcorr_rows

    table, psf = nircam_apcorr
    params = aperture_parameters(select_apcorr_rows(table, "NIRCAM", "F200W", "CLEAR"), (30, 50, 70))
    img, x, y, jy = _airy_scene(psf)
    for growth in (False, True):
        cat, _, info = make_source_catalog(img, pixar_sr=PIXAR_SR, aperture_params=params,
                                           apcorr_growth=growth)
        assert info["apcorr_method"] == ("reference+growth" if growth else "reference")
        # each star's encircled energy within r3 depends on where it falls in its pixel (1.5 %
        # rms); the reference holds the average over positions
        assert abs(_median_ratio(cat, x, y, jy) - 1) < 0.01
        assert cat.meta["aperture_radii_pix"] == pytest.approx(params["radii"])
        assert cat.meta["bkg_annulus_pix"] == [8.0, 13.0]
        assert not np.any(cat["is_extended"])


def test_apcorr_growth_corrects_resampling_broadening(nircam_apcorr):
    """Drizzle (pixfrac 1) moves each pixel's flux over its neighbours: an output grid offset by
    half a pixel in x and y averages 2 x 2 input pixels. The reference's correction alone then
    underestimates the total of an undersampled PSF; the measured growth restores it."""
    from steps.source_catalog.reference_data import aperture_parameters, select_apcorr_rows

    table, psf = nircam_apcorr
    params = aperture_parameters(select_apcorr_rows(table, "NIRCAM", "F200W", "CLEAR"), (30, 50, 70))
    img, x, y, jy = _airy_scene(psf, seed=5)
    smooth = 0.25 * (img[:-1, :-1] + img[1:, :-1] + img[:-1, 1:] + img[1:, 1:])
    xs, ys = x - 0.5, y - 0.5                         # positions on the shifted grid
    alone, _, _ = make_source_catalog(smooth, pixar_sr=PIXAR_SR, aperture_params=params,
                                      apcorr_growth=False)
    grown, _, info = make_source_catalog(smooth, pixar_sr=PIXAR_SR, aperture_params=params)
    r_alone, r_grown = _median_ratio(alone, xs, ys, jy), _median_ratio(grown, xs, ys, jy)
    print(f"half-pixel resampled Airy F200W: reference alone {r_alone:.4f}, with growth {r_grown:.4f}")
    assert r_alone < 0.95                              # the bias is there (power of the test)
    assert abs(r_grown - 1) < 0.01
    assert info["apcorr_stars"] >= 10 and info["apcorr_growth_radius"] == 7.0


def _nircam_i2d(img, pxsclrt=1.0, filt="F200W"):
    w = make_gwcs(img.shape, pixel_scale=0.031)
    prod = make_image_product(w, [], [], [], shape=img.shape, pixar_sr=PIXAR_SR,
                              filename="jw_apcorr_i2d.fits")
    prod.data = img.astype(np.float32)
    prod.arrays["WHT"] = np.ones(img.shape, np.float32)
    prod.meta.update({"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "FILTER": filt, "PUPIL": "CLEAR"})
    if pxsclrt is not None:
        prod.meta["PXSCLRT"] = pxsclrt
    return prod


def test_step_reads_apcorr_reference(tmp_path, nircam_apcorr, caplog):
    import logging

    from runner.errors import ReferenceFileError
    from simulator.stage2_references import write_apcorr

    _, psf = nircam_apcorr
    ref = write_apcorr(tmp_path / "apcorr.fits", "NRCA1", [("F200W", "CLEAR")])
    img, x, y, jy = _airy_scene(psf, seed=6)
    step = SourceCatalogStep(override_apcorr=ref)
    step.process(_nircam_i2d(img))
    cat = {sfx: obj for sfx, obj, _ in step._extra_outputs}["cat"].table
    assert cat.meta["apcorr_reference"] == "apcorr.fits"
    assert cat.meta["apcorr_method"] == "reference+growth"
    assert abs(_median_ratio(cat, x, y, jy) - 1) < 0.01
    with caplog.at_level(logging.WARNING, logger="webbcal.step.source_catalog"):
        SourceCatalogStep(override_apcorr=ref).process(_nircam_i2d(img, pxsclrt=None))
    assert "PXSCLRT" in caplog.text
    with pytest.raises(ReferenceFileError, match="apcorr.fits: APCORR reference has no rows for FILTER=F444W"):
        SourceCatalogStep(override_apcorr=ref).process(_nircam_i2d(img, filt="F444W"))
    with pytest.raises(ReferenceFileError, match="valid aperture_ee values"):
        SourceCatalogStep(override_apcorr=ref, aperture_ee3=75).process(_nircam_i2d(img))
