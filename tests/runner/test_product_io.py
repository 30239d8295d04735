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
