"""Reference files open with the stdatamodels reference models, validate, and hold the truth."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst.datamodels import (DarkMIRIModel, DarkModel, GainModel, LinearityModel,
                                          MaskModel, ReadnoiseModel, SaturationModel,
                                          SuperBiasModel)

from simulator.detectors import detector_properties, get_subarray
from simulator.ramps import readout_for
from simulator.references import REFTYPES, reference_arrays, write_reference

MODELS = {"mask": MaskModel, "saturation": SaturationModel, "superbias": SuperBiasModel,
          "linearity": LinearityModel, "dark": DarkModel, "gain": GainModel,
          "readnoise": ReadnoiseModel}


def _assert_same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("reftype", REFTYPES)
def test_nircam_subarray_reference(tmp_path, reftype):
    det, subname = "NRCA1", "SUB64P"
    sub = get_subarray(det, subname)
    ro = readout_for("RAPID", det, sub, nints=1, ngroups=6)
    path = write_reference(reftype, tmp_path / f"{reftype}.fits", det, sub, readout=ro)
    props = detector_properties(det)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MODELS[reftype](path)
    with model:
        model.validate()
        assert model.meta.reftype == reftype.upper()
        assert model.meta.instrument.name == "NIRCAM"
        assert model.meta.instrument.detector == det
        assert model.meta.subarray.name == subname
        assert (model.meta.subarray.xstart, model.meta.subarray.ystart) == (1, 1)
        assert (model.meta.subarray.xsize, model.meta.subarray.ysize) == (64, 64)
        assert model.meta.useafter == "2022-01-01T00:00:00"
        assert model.meta.pedigree == "GROUND"
        if reftype == "mask":
            _assert_same(model.dq, sub.cut(props.dq))
            assert model.dq[0, 0] & (1 << 31)                   # reference pixel corner
            names = [n.strip() for n in model.dq_def["NAME"]]
            assert "REFERENCE_PIXEL" in names and "DEAD" in names
        elif reftype == "saturation":
            _assert_same(model.data, sub.cut(props.saturation))
            _assert_same(model.dq, sub.cut(props.saturation_dq))
        elif reftype == "superbias":
            _assert_same(model.data, sub.cut(props.bias))
            assert model.err.shape == (64, 64) and 0 < np.median(model.err) < 3
        elif reftype == "linearity":
            assert model.coeffs.shape == (4, 64, 64)
            _assert_same(model.coeffs, sub.cut(props.linearity_coeffs))
        elif reftype == "gain":
            _assert_same(model.data, sub.cut(props.gain))
        elif reftype == "readnoise":
            _assert_same(model.data, sub.cut(props.readnoise_cds))
        elif reftype == "dark":
            assert model.data.shape == (6, 64, 64)
            assert model.meta.exposure.readpatt == "RAPID"
            assert model.meta.exposure.ngroups == 6
            assert model.meta.exposure.nframes == 1
            assert model.meta.exposure.groupgap == 0
            expected = (np.arange(1, 7) * ro.tframe)[:, None, None] * sub.cut(props.dark_rate)
            np.testing.assert_allclose(model.data, expected, rtol=1e-6)
    hdr = fits.getheader(path)
    for key in ("TELESCOP", "REFTYPE", "INSTRUME", "DETECTOR", "SUBARRAY", "SUBSTRT1",
                "SUBSTRT2", "SUBSIZE1", "SUBSIZE2", "FASTAXIS", "SLOWAXIS", "USEAFTER",
                "PEDIGREE", "DESCRIP", "AUTHOR", "HISTORY"):
        assert key in hdr, key
    assert hdr["TELESCOP"] == "JWST"


def test_miri_dark_is_4d(tmp_path):
    ro = readout_for("FAST", "MIRIMAGE", "SUB64", nints=3, ngroups=5)
    path = write_reference("dark", tmp_path / "d.fits", "MIRIMAGE", "SUB64", readout=ro)
    with DarkMIRIModel(path) as model:
        model.validate()
        assert model.data.shape == (2, 5, 64, 72)
        assert model.dq.ndim == 4
        rate = get_subarray("MIRIMAGE", "SUB64").cut(detector_properties("MIRIMAGE").dark_rate)
        np.testing.assert_allclose(model.data[1, -1], rate * 5 * ro.tframe, rtol=1e-6)


def test_full_frame_reference_and_version2(tmp_path):
    p1 = write_reference("gain", tmp_path / "g1.fits", "NIS", "FULL")
    p2 = write_reference("gain", tmp_path / "g2.fits", "NIS", "FULL", version=2)
    with GainModel(p1) as g1, GainModel(p2) as g2:
        g1.validate()
        assert g1.data.shape == (2048, 2048)
        _assert_same(g2.data, detector_properties("NIS", version=2).gain)
        assert g2.meta.pedigree.startswith("INFLIGHT")
        assert np.nanmedian(g2.data / g1.data) == pytest.approx(1.03, abs=0.002)
        # NO_GAIN_VALUE pixels are NaN, and flagged in the mask
        bad = ~np.isfinite(g1.data)
        assert bad.any()
        assert np.all(detector_properties("NIS").dq[bad] & (1 << 19))


def test_miri_linearity_works_on_raw_dn():
    props = detector_properties("MIRIMAGE")
    arrays = reference_arrays("linearity", "MIRIMAGE", "SUB256")
    c = arrays["COEFFS"].astype(np.float64)
    bias = get_subarray("MIRIMAGE", "SUB256").cut(props.bias).astype(np.float64)
    # the correction leaves the zero-signal level (the bias) unchanged
    ok = np.all(np.isfinite(c), axis=0)
    corrected = sum(ck * bias ** k for k, ck in enumerate(c))
    np.testing.assert_allclose(corrected[ok], bias[ok], atol=0.05)


def test_dark_needs_readout(tmp_path):
    with pytest.raises(ValueError, match="readout"):
        write_reference("dark", tmp_path / "d.fits", "NRCA1", "SUB64P")
    with pytest.raises(ValueError, match="flat"):
        write_reference("flat", tmp_path / "f.fits", "NRCA1", "SUB64P")


# -- APCORR (stage 3) ------------------------------------------------------------------------
@pytest.mark.parametrize("detector, filt, pupil, model_name", [
    ("NRCA1", "F200W", "CLEAR", "NrcImgApcorrModel"),
    ("MIRIMAGE", "F770W", None, "MirImgApcorrModel"),
])
def test_apcorr_reference_validates(tmp_path, detector, filt, pupil, model_name):
    from stdatamodels.jwst import datamodels as dm

    from simulator.stage2_references import APCORR_EEFRACTIONS, MIRI_IMAGING_SUBARRAYS, write_apcorr

    path = write_apcorr(tmp_path / "apcorr.fits", detector, [(filt, pupil)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = getattr(dm, model_name)(path)
    with model:
        model.validate()
        assert model.meta.reftype == "APCORR"
        assert model.meta.instrument.detector == detector
        table = model.apcorr_table
        assert set(np.char.strip(np.asarray(table["filter"]).astype(str))) == {filt}
        if detector == "MIRIMAGE":
            groups = set(np.char.strip(np.asarray(table["subarray"]).astype(str)))
            assert groups == set(MIRI_IMAGING_SUBARRAYS)
            table = table[np.char.strip(np.asarray(table["subarray"]).astype(str)) == "SUB64"]
        else:
            assert set(np.char.strip(np.asarray(table["pupil"]).astype(str))) == {"CLEAR"}
        percent = np.round(table["eefraction"] * 100).astype(int)
        for f in APCORR_EEFRACTIONS:                       # exactly one row per requested EE
            assert np.count_nonzero(percent == round(100 * f)) == 1
        order = np.argsort(table["radius"])
        assert np.all(np.diff(table["eefraction"][order]) > 0)       # EE grows with radius
        assert len(np.unique(table["skyin"])) == 1 and len(np.unique(table["skyout"])) == 1
        assert table["skyin"][0] > table["radius"][percent == 90][0]
        # the sky annulus holds PSF wings: the correction exceeds 1 / EE
        assert np.all(table["apcorr"] > 1.0 / table["eefraction"])


def test_apcorr_recovers_rendered_point_sources():
    """Independent check: stars rendered by the scene code at random positions, measured with
    photutils apertures and annulus as source_catalog does: the rows' EE and corrections give
    back the injected flux."""
    from photutils.aperture import CircularAnnulus, CircularAperture, aperture_photometry

    from simulator.scenes import render_point_sources
    from simulator.stage2_references import apcorr_table, imaging_psf

    psf = imaging_psf("NRCA1", "F200W", "CLEAR")
    table = apcorr_table("NRCA1", [("F200W", "CLEAR")])
    rng = np.random.default_rng(11)
    n = 60
    x = 40.0 + rng.uniform(-0.5, 0.5, n) + 80.0 * (np.arange(n) % 10)
    y = 40.0 + rng.uniform(-0.5, 0.5, n) + 80.0 * (np.arange(n) // 10)
    img, landed = render_point_sources((480, 800), x, y, np.ones(n), psf, 0.0)
    assert np.allclose(landed, 1.0)
    pos = np.column_stack([x, y])
    skyin, skyout = float(table["skyin"][0]), float(table["skyout"][0])
    ann = CircularAnnulus(pos, skyin, skyout)
    ann_mean = np.asarray(aperture_photometry(img, ann, method="exact")["aperture_sum"]) / ann.area
    for row in table:
        ap = CircularAperture(pos, float(row["radius"]))
        s = np.asarray(aperture_photometry(img, ap, method="exact")["aperture_sum"])
        total = (s - ann_mean * ap.area) * row["apcorr"]
        # averages over 60 random positions within the pixel: within 4 standard errors (the
        # scatter with the position is up to 1 % of the flux for the smallest apertures)
        for values, expected in ((s, row["eefraction"]), (total, 1.0)):
            sem = values.std(ddof=1) / np.sqrt(n)
            assert abs(values.mean() - expected) < 4 * sem + 1e-4, (row["radius"], expected, sem)
