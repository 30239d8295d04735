"""Partial reads and writes of FITS image extensions (runner.fits_sections)."""
import hashlib

import numpy as np
import pytest
from astropy.io import fits

from runner.errors import InputError
from runner.fits_sections import ImageSection, copy_with_primary_header, read_section, write_section


@pytest.fixture
def cube_file(tmp_path):
    rng = np.random.default_rng(3)
    sci = rng.normal(size=(7, 5, 4)).astype(np.float32)
    dq = rng.integers(0, 2 ** 32, size=(7, 5, 4), dtype=np.uint64).astype(np.uint32)
    groupdq = rng.integers(0, 255, size=(7, 5, 4)).astype(np.uint8)
    raw = rng.integers(0, 65535, size=(7, 5, 4)).astype(np.uint16)
    path = tmp_path / "cube.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(dq, name="DQ"),
                  fits.ImageHDU(groupdq, name="GROUPDQ"), fits.ImageHDU(raw, name="RAW")]).writeto(path)
    return path, {"SCI": sci, "DQ": dq, "GROUPDQ": groupdq, "RAW": raw}


@pytest.mark.parametrize("name", ["SCI", "DQ", "GROUPDQ", "RAW"])
@pytest.mark.parametrize("key", [Ellipsis, (slice(None), slice(1, 3)), (slice(2, 5),),
                                 (slice(None), slice(0, 2), slice(1, 4)), (3,)])
def test_read_section_matches_astropy(cube_file, name, key):
    path, arrays = cube_file
    got = read_section(path, name, key)
    want = arrays[name][key]
    assert got.dtype == want.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, want)


def test_write_section_round_trip_and_only_that_part(cube_file):
    path, arrays = cube_file
    new = arrays["DQ"][:, 2:4] | np.uint32(16)
    write_section(path, "DQ", (slice(None), slice(2, 4)), new)
    write_section(path, "GROUPDQ", (slice(1, 2),), np.full((1, 5, 4), 9, np.uint8))
    with fits.open(path) as h:
        dq = h["DQ"].data
        want = arrays["DQ"].copy()
        want[:, 2:4] = new
        np.testing.assert_array_equal(dq, want)
        assert dq.dtype == np.uint32
        assert (h["GROUPDQ"].data[1] == 9).all()
        np.testing.assert_array_equal(h["GROUPDQ"].data[0], arrays["GROUPDQ"][0])
        np.testing.assert_array_equal(h["SCI"].data, arrays["SCI"])


@pytest.mark.parametrize("shape,key", [
    ((3, 40, 5000), (slice(None), slice(5, 9), slice(10, 20))),      # short runs read as rows
    ((2, 3, 40000), (slice(None), slice(0, 2), slice(100, 110))),    # wide rows: one read per row
    ((2, 3, 40000), (1, slice(None), -1)),
])
def test_read_and_write_cutouts_of_wide_images(tmp_path, shape, key):
    rng = np.random.default_rng(5)
    dq = rng.integers(0, 2 ** 32, size=shape, dtype=np.uint64).astype(np.uint32)
    path = tmp_path / "wide.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(dq, name="DQ")]).writeto(path)
    np.testing.assert_array_equal(read_section(path, "DQ", key), dq[key])
    new = dq[key] ^ np.uint32(0x80000001)
    write_section(path, "DQ", key, new)
    want = dq.copy()
    want[key] = new
    np.testing.assert_array_equal(fits.getdata(path, "DQ"), want)


def test_image_section_is_lazy_array_like(cube_file):
    path, arrays = cube_file
    sec = ImageSection(path, "SCI", arrays["SCI"].shape, np.float32)
    assert sec.shape == (7, 5, 4) and sec.ndim == 3 and len(sec) == 7
    np.testing.assert_array_equal(sec[:, 1:2], arrays["SCI"][:, 1:2])
    np.testing.assert_array_equal(np.asarray(sec), arrays["SCI"])


def test_missing_extension_is_named(cube_file):
    path, _ = cube_file
    with pytest.raises(InputError, match="no ERR extension"):
        read_section(path, "ERR", Ellipsis)


def test_copy_with_primary_header_keeps_every_array(cube_file, tmp_path):
    path, arrays = cube_file
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    header = fits.getheader(path)
    for k in range(80):                       # a header that needs more 2880-byte blocks
        header[f"KEY{k}"] = (k, "a card")
    header["S_OUTLIR"] = "COMPLETE"
    out = copy_with_primary_header(path, tmp_path / "copy.fits", header, filename="copy.fits")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before      # the source is untouched
    with fits.open(out) as h:
        h.verify("exception")
        assert h[0].header["KEY79"] == 79 and h[0].header["FILENAME"] == "copy.fits"
        assert h[0].header["S_OUTLIR"] == "COMPLETE"
        for name, arr in arrays.items():
            np.testing.assert_array_equal(h[name].data, arr)
    # in place (same source and destination)
    header["KEY0"] = "changed"
    copy_with_primary_header(out, out, header)
    assert fits.getheader(out)["KEY0"] == "changed"
    np.testing.assert_array_equal(fits.getdata(out, "DQ"), arrays["DQ"])
