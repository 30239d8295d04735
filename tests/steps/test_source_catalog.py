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
