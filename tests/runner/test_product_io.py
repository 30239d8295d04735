"""Reading and writing products; bad input gets one clear line naming the file."""
import numpy as np
import pytest
from astropy.io import fits

from runner.errors import InputError
from runner.product import Product, rootname


def uncal(path, shape=(1, 4, 8, 8), **keys):
    hdr = fits.Header()
    hdr.update({"TELESCOP": "JWST", "INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "EXP_TYPE": "NRC_IMAGE"})
    hdr.update(keys)
    sci = (np.arange(np.prod(shape)) % 1000 + 1000).astype(np.uint16).reshape(shape)
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(sci, name="SCI")]).writeto(path)
    return path


def test_roundtrip_and_atomic_save(tmp_path):
    src = uncal(tmp_path / "jw01_nrca1_uncal.fits")
    before = src.read_bytes()
    p = Product.open(src)
    assert p.kind == "level1b" and p.data.dtype == np.uint16
    ramp = p.as_ramp()
    assert ramp.kind == "ramp" and ramp.data.dtype == np.float32 and ramp.groupdq.shape == ramp.data.shape
    out = ramp.save(tmp_path / "jw01_nrca1_ramp.fits")
    assert src.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp"))
    back = Product.open(out)
    assert back.kind == "ramp" and np.array_equal(back.data, ramp.data)
    assert back.meta["DATAMODL"] == "RampModel"


def test_rootname():
    assert rootname("a/jw01234001001_01101_00001_nrca1_uncal.fits") == "jw01234001001_01101_00001_nrca1"
    assert rootname("x_rateints.fits") == "x"
    assert rootname("plain.fits") == "plain"


@pytest.mark.parametrize("content,message", [
    (None, "file not found"),
    (b"", "file is empty"),
    (b"hello, this is not a FITS file at all" * 100, "not a FITS file"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad_uncal.fits"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=f"bad_uncal.fits: {message}"):
        Product.open(path)


def test_truncated_file(tmp_path):
    src = uncal(tmp_path / "t_uncal.fits", shape=(1, 4, 64, 64))
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="t_uncal.fits: .*(truncated|corrupt)"):
        Product.open(src)


def test_wrong_shape_and_no_sci(tmp_path):
    path = tmp_path / "w_uncal.fits"
    hdr = fits.Header({"DATAMODL": "RampModel"})
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(np.zeros((4, 4), np.float32), name="SCI")]).writeto(path)
    with pytest.raises(InputError, match="w_uncal.fits: SCI has 2 dimensions .* needs 4"):
        Product.open(path)
    path2 = tmp_path / "n_uncal.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((4, 4)), name="DATA")]).writeto(path2)
    with pytest.raises(InputError, match="n_uncal.fits: no SCI image extension"):
        Product.open(path2)


def test_missing_keyword_and_unknown_exp_type(tmp_path):
    path = tmp_path / "k_uncal.fits"
    hdr = fits.Header({"INSTRUME": "NIRCAM", "EXP_TYPE": "NRC_IMAGE"})
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(np.zeros((1, 2, 4, 4), np.uint16), name="SCI")]).writeto(path)
    with pytest.raises(InputError, match="k_uncal.fits: missing required keyword DETECTOR"):
        Product.open(path)
    path2 = uncal(tmp_path / "e_uncal.fits", EXP_TYPE="NRC_IMGE")
    with pytest.raises(InputError, match="e_uncal.fits: unknown EXP_TYPE 'NRC_IMGE'; did you mean 'NRC_IMAGE'"):
        Product.open(path2)


def test_wrong_dtype(tmp_path):
    path = tmp_path / "f_uncal.fits"
    hdr = fits.Header({"DATAMODL": "Level1bModel", "INSTRUME": "NIRCAM", "DETECTOR": "NRCA1",
                       "EXP_TYPE": "NRC_IMAGE"})
    fits.HDUList([fits.PrimaryHDU(header=hdr),
                  fits.ImageHDU(np.zeros((1, 2, 4, 4), np.float32), name="SCI")]).writeto(path)
    with pytest.raises(InputError, match="f_uncal.fits: raw SCI must be integer DN, found float32"):
        Product.open(path)


# -- the WCS: where jwst keeps it ---------------------------------------------------------------
def _image_with_wcs():
    from tests.steps.test_resample import make_wcs

    data = np.arange(24 * 20, dtype=np.float32).reshape(24, 20)
    meta = fits.Header()
    meta.update({"TELESCOP": "JWST", "INSTRUME": "NIRCAM"})
    return Product("image", meta, {"SCI": data, "ERR": np.ones_like(data), "DQ": np.zeros(data.shape, np.uint32)},
                   {}, {"SCI": fits.Header()}, filename="x_cal.fits", wcs=make_wcs(data.shape))


def test_wcs_is_meta_wcs_of_the_asdf_extension(tmp_path):
    """Our products keep the gwcs as jwst's data models do; stdatamodels reads it back."""
    import warnings

    from stdatamodels.jwst.datamodels import ImageModel

    prod = _image_with_wcs()
    path = prod.save(tmp_path / "x_cal.fits")
    with fits.open(path) as h:
        assert "ASDF" in h and "WCS_ASDF" not in h
    back = Product.open(path)
    np.testing.assert_allclose(back.wcs(3.0, 7.0), prod.wcs(3.0, 7.0), rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ImageModel(str(path)) as m:
            np.testing.assert_allclose(m.meta.wcs(3.0, 7.0), prod.wcs(3.0, 7.0), rtol=0, atol=1e-12)
            # a file written by stdatamodels (an archive-like product) opens with its WCS too
            m.save(str(tmp_path / "y_cal.fits"))
    archive_like = Product.open(tmp_path / "y_cal.fits")
    np.testing.assert_allclose(archive_like.wcs(3.0, 7.0), prod.wcs(3.0, 7.0), rtol=0, atol=1e-12)


def test_legacy_wcs_extension_is_still_read(tmp_path):
    import io

    import asdf

    prod = _image_with_wcs()
    buf = io.BytesIO()
    asdf.AsdfFile({"wcs": prod.wcs}).write_to(buf)
    hdul = fits.HDUList([fits.PrimaryHDU(header=prod.meta), fits.ImageHDU(prod.data, name="SCI"),
                         fits.ImageHDU(np.frombuffer(buf.getvalue(), np.uint8), name="WCS_ASDF")])
    hdul.writeto(tmp_path / "old_cal.fits")
    back = Product.open(tmp_path / "old_cal.fits")
    np.testing.assert_allclose(back.wcs(3.0, 7.0), prod.wcs(3.0, 7.0), rtol=0, atol=1e-12)
    assert "WCS_ASDF" not in back.arrays


def test_corrupt_asdf_extension_is_named(tmp_path):
    prod = _image_with_wcs()
    hdul = prod.to_hdulist("bad_cal.fits")
    col = fits.Column(name="ASDF_METADATA", format="16B", array=np.arange(16, dtype=np.uint8)[None])
    hdul[-1] = fits.BinTableHDU.from_columns([col], name="ASDF")
    hdul.writeto(tmp_path / "bad_cal.fits")
    with pytest.raises(InputError, match="bad_cal.fits: cannot read the ASDF extension"):
        Product.open(tmp_path / "bad_cal.fits")
