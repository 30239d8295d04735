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
