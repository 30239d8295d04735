"""Read and write parts of a FITS image extension without loading the whole array.

Stage-3 steps that stream long time series (thousands of integrations) read a block of rows
or a cutout of every integration, and write back one array (DQ) of a working copy, without
holding the cube in memory. The file is mapped for the duration of one call only, so no page
of it stays resident afterwards.

Only plain (uncompressed) image extensions are handled, with the scalings the JWST products
use: none, or the unsigned-integer convention (``BZERO = 2**(bits-1)``, ``BSCALE = 1``).
Anything else raises ``ValueError`` naming the file and extension.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from .errors import InputError

__all__ = ["ImageSection", "read_section", "write_section", "copy_with_primary_header"]

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def _layout(path, extname):
    """(data offset in bytes, shape, stored dtype, native dtype, sign-bit flip or None)."""
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            index = hdul.index_of(extname)
            header = hdul[index].header
            offset = int(hdul.fileinfo(index)["datLoc"])
    except KeyError:
        raise InputError(f"{path}: no {extname} extension") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read FITS file ({exc})") from None
    naxis = int(header.get("NAXIS", 0))
    shape = tuple(int(header[f"NAXIS{k}"]) for k in range(naxis, 0, -1))
    stored = np.dtype(_BITPIX[int(header["BITPIX"])])
    bzero, bscale = header.get("BZERO", 0), header.get("BSCALE", 1)
    if bscale != 1:
        raise ValueError(f"{path}[{extname}]: BSCALE={bscale} is not supported for sections")
    flip = None
    native = stored.newbyteorder("=")
    if bzero:
        if stored.kind != "i" or bzero != 2 ** (8 * stored.itemsize - 1):
            raise ValueError(f"{path}[{extname}]: BZERO={bzero} is not supported for sections")
        native = np.dtype(f"u{stored.itemsize}")
        flip = native.type(1 << (8 * stored.itemsize - 1))
    return offset, shape, stored, native, flip


def read_section(path, extname, key=Ellipsis):
    """``array[key]`` of one image extension, reading only the bytes it needs.

    Parameters
    ----------
    path : str or path-like
        FITS file.
    extname : str
        Image extension (``"SCI"``, ``"DQ"``, ...).
    key : index expression
        Basic numpy indexing (slices, integers, ``Ellipsis``).

    Returns
    -------
    numpy.ndarray
        A native-byte-order copy, with the unsigned convention applied (DQ as ``uint32``).
    """
    offset, shape, stored, native, flip = _layout(path, extname)
    mm = np.memmap(path, dtype=stored, mode="r", offset=offset, shape=shape)
    try:
        part = np.array(mm[key])
    finally:
        del mm
    if flip is not None:
        return part.astype(stored.newbyteorder("=")).view(native) ^ flip
    return part.astype(native)


def write_section(path, extname, key, values):
    """Write ``values`` into ``array[key]`` of an image extension, in place.

    Parameters
    ----------
    path : str or path-like
        FITS file (a working copy: the caller owns it).
    extname : str
        Image extension.
    key : index expression
        Basic numpy indexing, as for :func:`read_section`.
    values : array_like
        Values in the native (unscaled) type, e.g. ``uint32`` DQ.
    """
    offset, shape, stored, native, flip = _layout(path, extname)
    values = np.asarray(values, dtype=native)
    if flip is not None:
        values = (values ^ flip).view(stored.newbyteorder("="))
    mm = np.memmap(path, dtype=stored, mode="r+", offset=offset, shape=shape)
    try:
        mm[key] = values
        mm.flush()
    finally:
        del mm


class ImageSection:
    """An array-like view of one image extension on disk: slicing reads only that part.

    ``shape``, ``dtype``, ``ndim`` and ``len`` are known without reading; ``section[key]``
    returns a numpy array (see :func:`read_section`).
    """

    def __init__(self, path, extname, shape, dtype):
        self.path = Path(path)
        self.extname = extname
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        return read_section(self.path, self.extname, key)

    def __array__(self, dtype=None, copy=None):
        data = read_section(self.path, self.extname)
        return data if dtype is None else data.astype(dtype)

    def __repr__(self):
        return f"<ImageSection {self.path.name}[{self.extname}] {self.shape} {self.dtype}>"


def copy_with_primary_header(src, dst, header, filename=None):
    """Copy a FITS file with a new primary header, streaming every other byte unchanged.

    The new header must describe the same primary data (NAXIS and BITPIX as in ``src``); the
    copy is written to a temporary file and renamed, so ``dst`` is never half-written.

    Parameters
    ----------
    src, dst : str or path-like
        Source file and destination (may be the same path).
    header : astropy.io.fits.Header
        The new primary header.
    filename : str, optional
        Value of the FILENAME keyword (the destination's name, as :meth:`Product.save` sets).
    """
    src, dst = Path(src), Path(dst)
    with fits.open(src, memmap=False, lazy_load_hdus=True) as hdul:
        old = hdul[0].header
        data_at = int(hdul.fileinfo(0)["datLoc"])
        if int(old.get("NAXIS", 0)) != 0:
            raise ValueError(f"{src}: primary HDU holds data; only header-only primaries are supported")
    with warnings.catch_warnings():
        # a long keyword comment is shortened to fit its 80-character card, as Product.save does
        warnings.filterwarnings("ignore", message="Card is too long, comment will be truncated")
        hdu = fits.PrimaryHDU(header=header.copy())       # mandatory cards first, NAXIS = 0
        hdu.header["EXTEND"] = True
        if filename:
            hdu.header["FILENAME"] = (filename, "Name of the file")
        hdu.verify("silentfix")
        head = hdu.header.tostring(endcard=True, padding=True).encode("ascii")
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            out.write(head)
            inp.seek(data_at)
            while True:
                block = inp.read(16 << 20)
                if not block:
                    break
                out.write(block)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dst
