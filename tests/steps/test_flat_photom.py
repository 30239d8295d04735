"""flat_field and photom against the simulator's truth; their references; the image2 recipe."""
import warnings

import numpy as np
import pytest
from astropy.io import fits

from runner.dqflags import pixel
from runner.errors import ReferenceFileError
from simulator import stage2_references as S
from simulator.detectors import detector_properties, get_subarray
from simulator.ramps import readout_for, simulate_ramps
from steps.flat_field.step import FlatFieldStep
from steps.photom.step import PhotomStep
from tests.steps.test_assign_wcs import rate_product

NO_FLAT = pixel["NO_FLAT_FIELD"] | pixel["DO_NOT_USE"]


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("stage2refs")
    return {
        "flat": S.write_flat(d / "flat.fits", "NRCA1", "SUB64P", "F200W", "CLEAR"),
        "flat400": S.write_flat(d / "flat400.fits", "NRCA1", "SUB400P", "F200W", "CLEAR"),
        "flat_miri": S.write_flat(d / "flat_miri.fits", "MIRIMAGE", "SUB64", "F770W"),
        "photom": S.write_photom(d / "photom.fits", "NRCA1"),
        "photom_nis": S.write_photom(d / "photom_nis.fits", "NIS"),
        "photom_miri": S.write_photom(d / "photom_miri.fits", "MIRIMAGE"),
        "area": S.write_area(d / "area.fits", "NRCA1", "SUB64P"),
        "distortion": S.write_distortion(d / "distortion.asdf", "NRCA1"),
    }


def test_references_validate_in_stdatamodels(refs):
    from stdatamodels.jwst import datamodels as dm

    for key, cls in (("flat", dm.FlatModel), ("flat_miri", dm.FlatModel),
                     ("photom", dm.NrcImgPhotomModel), ("photom_nis", dm.NisImgPhotomModel),
                     ("photom_miri", dm.MirImgPhotomModel), ("area", dm.PixelAreaModel)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with cls(refs[key], strict_validation=True) as m:
                m.validate()
                assert m.meta.reftype.lower() in key
    with dm.FlatModel(refs["flat"]) as m:
        assert (m.dq[np.isnan(m.data)] & NO_FLAT == NO_FLAT).all()


def _scene(shape, rng):
    rate_e = np.full(shape, 40.0)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for x, y, f in rng.uniform([8, 8, 2e3], [56, 56, 2e4], (5, 3)):
        rate_e += f / (2 * np.pi * 1.5 ** 2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
    return rate_e


def test_flat_field_recovers_rate_over_nominal_gain(refs):
    sub = get_subarray("NRCA1", "SUB64P")
    ro = readout_for("RAPID", "NRCA1", sub, nints=2, ngroups=2)
    rate_e = _scene(sub.shape, np.random.default_rng(5))
    # the scene seen through the pixel QE, electrons -> DN with the simulator's per-pixel gain
    _, truth = simulate_ramps("NRCA1", sub, ro, rate_e * S.qe_response("NRCA1", sub, "F200W"),
                              seed=1, include={"gain"})
    rate_dn = truth.rate_dn                                     # (nints, ny, nx) DN/s
    product = rate_product("NRCA1", "SUB64P", kind="cube", nints=2)
    product.data[:] = rate_dn
    product.var_poisson[:] = rate_dn / 2.0
    product.var_rnoise[:] = 0.01
    out = FlatFieldStep(override_flat=refs["flat"]).process(product)
    want = rate_e / detector_properties("NRCA1").nominal_gain
    good = (out.dq[0] & NO_FLAT) == 0
    good &= ~get_subarray("NRCA1", "SUB64P").cut(
        detector_properties("NRCA1").detector.reference_pixel_mask())
    for k in range(2):                                          # every integration
        rel = out.data[k][good] / want[good] - 1
        assert np.max(np.abs(rel)) < 0.005
    # the flat really corrects something: before, per-pixel gain / QE scatter of ~2 %
    assert np.std(rate_dn[0][good] / want[good]) > 0.01
    flat = fits.getdata(refs["flat"], "SCI")
    ferr = fits.getdata(refs["flat"], "ERR")
    f = np.where(np.isfinite(flat), flat, 1.0)
    np.testing.assert_allclose(out.var_poisson[1], rate_dn[1] / 2.0 / f ** 2, rtol=1e-5)
    np.testing.assert_allclose(out.var_flat[1][good], (out.data[1] ** 2 * ferr ** 2 / f ** 2)[good], rtol=1e-4)
    np.testing.assert_allclose(out.err ** 2, out.var_poisson + out.var_rnoise + out.var_flat, rtol=1e-4)


def test_flat_nan_and_wrong_subarray(refs, tmp_path):
    product = rate_product("NRCA1", "SUB64P")
    product.data[:] = 3.0
    with fits.open(refs["flat"]) as hdul:
        hdul["SCI"].data[10, 11] = np.nan
        hdul["SCI"].data[12, 13] = -1.0
        hdul.writeto(tmp_path / "nanflat.fits")
    out = FlatFieldStep(override_flat=str(tmp_path / "nanflat.fits")).process(product)
    for y, x in ((10, 11), (12, 13)):
        assert out.dq[y, x] & NO_FLAT == NO_FLAT and out.data[y, x] == 3.0
    big = rate_product("NRCA1", "SUB400P")
    with pytest.raises(ReferenceFileError, match="flat.fits.*SUB64P.*SUB400P"):
        FlatFieldStep(override_flat=refs["flat"]).process(big)


def test_photom_units_keywords_area_and_flux(refs):
    product = rate_product("NRCA1", "SUB64P")
    rng = np.random.default_rng(2)
    rate_e = _scene(product.data.shape, rng) - 40.0            # sources only
    g = detector_properties("NRCA1").nominal_gain
    product.data[:] = rate_e / g                                 # an ideally flat-fielded rate
    product.err[:] = 0.1
    product.var_poisson[:] = 0.01
    out = PhotomStep(override_photom=refs["photom"], override_area=refs["area"]).process(product)
    c = S.photmjsr("NIRCAM", "F200W", "CLEAR")
    assert out.meta["PHOTMJSR"] == pytest.approx(c, rel=1e-6)
    assert out.meta["PHOTUJA2"] == pytest.approx(c * 23.5044, rel=1e-4)
    pixar_sr, pixar_a2 = S.pixel_area_sr("NRCA1")
    assert out.meta["PIXAR_SR"] == pytest.approx(pixar_sr) and out.meta["PIXAR_A2"] == pytest.approx(pixar_a2)
    assert out.ext_headers["SCI"]["BUNIT"] == "MJy/sr" and out.ext_headers["ERR"]["BUNIT"] == "MJy/sr"
    np.testing.assert_allclose(out.err, 0.1 * c, rtol=1e-6)
    np.testing.assert_allclose(out.var_poisson, 0.01 * c * c, rtol=1e-5)
    np.testing.assert_array_equal(out.area, S.pixel_area_map("NRCA1", "SUB64P"))
    # summed surface brightness x pixel solid angle = the source flux in Jy
    jy = out.data.astype(np.float64).sum() * out.meta["PIXAR_SR"] * 1e6
    assert jy == pytest.approx(rate_e.sum() * S.rate_e_to_jy("NIRCAM", "NRCA1", "F200W", "CLEAR"), rel=1e-5)


def test_photom_missing_row_and_spectroscopic_skip(refs):
    from runner.step import SkipStep

    product = rate_product("NRCA1", "SUB64P")
    product.meta["FILTER"] = "F999W"
    with pytest.raises(ReferenceFileError, match=r"photom.fits: no PHOTOM row for FILTER=F999W PUPIL=CLEAR"):
        PhotomStep(override_photom=refs["photom"]).process(product)
    miri = rate_product("MIRIMAGE", "SUB64", exp_type="MIR_IMAGE")
    out = PhotomStep(override_photom=refs["photom_miri"]).process(miri)
    assert out.meta["PHOTMJSR"] == pytest.approx(S.photmjsr("MIRI", "F770W"), rel=1e-6)
    lrs = rate_product("MIRIMAGE", "SUB64", exp_type="MIR_LRS-FIXEDSLIT")
    with pytest.raises(SkipStep):
        PhotomStep(override_photom=refs["photom_miri"]).process(lrs)


def test_image2_recipe_writes_cal_and_calints(tmp_path, monkeypatch):
    """calwebb_image2 with the local CRDS cache: _cal / _calints open in stdatamodels."""
    import crds.core.config
    import crds.core.utils
    from stdatamodels.jwst import datamodels as dm

    from runner.execute import run_recipe
    from runner.recipe import Recipe
    from simulator.crds_cache import build_crds_cache

    root = build_crds_cache(tmp_path / "crds", [("NRCA1", "SUB64P", None, "F200W", "CLEAR")],
                            contexts=("jwst_0001.pmap",))
    monkeypatch.setenv("CRDS_PATH", str(root))
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    crds.core.config.CRDS_REF_SUBDIR_MODE = "None"
    crds.core.utils.clear_function_caches()
    image = rate_product("NRCA1", "SUB64P")
    image.data[:] = 2.0
    cube = rate_product("NRCA1", "SUB64P", kind="cube", nints=2)
    cube.data[:] = 2.0
    paths = [image.save(tmp_path / image.filename), cube.save(tmp_path / cube.filename)]
    results = run_recipe(Recipe.load("calwebb_image2"), paths, output_dir=tmp_path / "out",
                         apply_crds_pars=False,
                         overrides={"bkg_subtract": {"skip": True}, "resample": {"skip": True}})
    outs = [r.main_output for r in results]
    assert outs[0].endswith("_cal.fits") and outs[1].endswith("_calints.fits")
    for path, cls in zip(outs, (dm.ImageModel, dm.CubeModel)):
        hdr = fits.getheader(path)
        assert hdr["S_WCS"] == hdr["S_FLAT"] == hdr["S_PHOTOM"] == "COMPLETE"
        assert hdr["R_DISTOR"].startswith("crds://") and hdr["R_FLAT"].startswith("crds://")
        assert hdr["R_FILOFF"] == "N/A" and hdr["PIXAR_SR"] > 0
        with cls(path) as m:
            m.validate()
            assert m.meta.bunit_data == "MJy/sr" and m.area.shape == (64, 64)
            assert m.meta.photometry.conversion_megajanskys == pytest.approx(hdr["PHOTMJSR"])
    crds.core.utils.clear_function_caches()
