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
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from .atomic import atomic_path
from .errors import InputError

__all__ = ["ImageSection", "read_section", "read_hdu_data", "write_section", "copy_with_primary_header"]

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def _header_layout(header, where):
    """(shape, stored dtype, native dtype, sign-bit flip or None) of an image header.

    Raises ``ValueError`` for scalings other than the unsigned-integer convention.
    """
    naxis = int(header.get("NAXIS", 0))
    shape = tuple(int(header[f"NAXIS{k}"]) for k in range(naxis, 0, -1))
    stored = np.dtype(_BITPIX[int(header["BITPIX"])])
    bzero, bscale = header.get("BZERO", 0), header.get("BSCALE", 1)
    if bscale != 1:
        raise ValueError(f"{where}: BSCALE={bscale} is not supported for sections")
    flip = None
    native = stored.newbyteorder("=")
    if bzero:
        if stored.kind != "i" or bzero != 2 ** (8 * stored.itemsize - 1):
            raise ValueError(f"{where}: BZERO={bzero} is not supported for sections")
        native = np.dtype(f"u{stored.itemsize}")
        flip = native.type(1 << (8 * stored.itemsize - 1))
    return shape, stored, native, flip


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
    return (offset,) + _header_layout(header, f"{path}[{extname}]")


def read_hdu_data(path, hdul, index):
    """The data of image HDU ``index`` of ``hdul`` (opened from ``path``), in native byte order.

    Plain image extensions (no compression, no scaling but the unsigned-integer convention) are
    read with one ``pread`` and converted in place, several times faster than astropy's
    ``hdu.data`` plus a byte swap; anything else goes through astropy.
    """
    from .product import native

    hdu = hdul[index]
    if not isinstance(hdu, (fits.ImageHDU, fits.PrimaryHDU)) or isinstance(hdu, fits.CompImageHDU):
        return native(hdu.data)
    try:
        shape, stored, native_dtype, flip = _header_layout(hdu.header, f"{path}[{index}]")
    except (ValueError, KeyError):
        return native(hdu.data)
    if not shape:
        return None
    offset = int(hdul.fileinfo(index)["datLoc"])
    return _read_box(path, offset, shape, stored, native_dtype, flip, [(0, n) for n in shape],
                     hdu.name or f"HDU {index}")


def _ranges(key, shape):
    """Per-dimension ``(start, stop)`` of a basic index, and the dimensions an integer drops."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1:]
    if len(key) > len(shape):
        raise IndexError(f"too many indices ({len(key)}) for an array of {len(shape)} dimensions")
    key = key + (slice(None),) * (len(shape) - len(key))
    ranges, drop = [], []
    for dim, (k, n) in enumerate(zip(key, shape)):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                raise IndexError("sections take slices with step 1 only")
            ranges.append((start, max(start, stop)))
        elif isinstance(k, (int, np.integer)):
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {k} is out of bounds for axis {dim} with size {n}")
            ranges.append((i, i + 1))
            drop.append(dim)
        else:
            raise IndexError(f"sections take integers and slices only, not {type(k).__name__}")
    return ranges, tuple(drop)


def _runs(ranges, shape, itemsize):
    """Byte offsets and length of the contiguous runs of a box ``ranges`` in a C-ordered array."""
    ndim = len(shape)
    strides = [itemsize] * ndim
    for d in range(ndim - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    inner = ndim - 1                       # the innermost dimension not fully covered
    while inner > 0 and ranges[inner] == (0, shape[inner]):
        inner -= 1
    length = (ranges[inner][1] - ranges[inner][0]) * strides[inner]
    base = ranges[inner][0] * strides[inner]
    lead = [range(a, b) for a, b in ranges[:inner]]
    lead_offsets = np.zeros(1, np.int64)
    for d, r in enumerate(lead):
        lead_offsets = (lead_offsets[:, None] + np.asarray(r, np.int64)[None] * strides[d]).ravel()
    return lead_offsets + base, length


def _box_size(ranges):
    return tuple(b - a for a, b in ranges)


def read_section(path, extname, key=Ellipsis):
    """``array[key]`` of one image extension, reading only the bytes it needs.

    The bytes are read with ``pread`` into the result (no memory map: the file's pages never
    count in the process's resident memory). Short runs (a cutout of a few columns) are read as
    whole rows and cut in memory.

    Parameters
    ----------
    path : str or path-like
        FITS file.
    extname : str
        Image extension (``"SCI"``, ``"DQ"``, ...).
    key : index expression
        Basic indexing with step-1 slices, integers and ``Ellipsis``.

    Returns
    -------
    numpy.ndarray
        A native-byte-order copy, with the unsigned convention applied (DQ as ``uint32``).
    """
    offset, shape, stored, native, flip = _layout(path, extname)
    want, drop = _ranges(key, shape)
    out = _read_box(path, offset, shape, stored, native, flip, want, extname)
    return out.squeeze(axis=drop) if drop else out


def _read_box(path, offset, shape, stored, native, flip, want, where):
    """The box ``want`` (per-dimension (start, stop)) of an array stored at ``offset``."""
    # widen short runs to whole rows (fewer system calls), then cut in memory
    read = list(want)
    item = stored.itemsize
    for d in range(len(shape) - 1, 0, -1):
        run = np.prod(_box_size(read[d:]), dtype=np.int64) * item
        full = np.prod(shape[d:], dtype=np.int64) * item
        if read[d] == (0, shape[d]) or run >= 4096 or full > max(4096, 4 * run):
            break
        read[d] = (0, shape[d])
    box = _box_size(read)
    out = np.empty(box, dtype=stored)
    if out.size:
        starts, length = _runs(read, shape, item)
        flat = out.reshape(-1).view(np.uint8)
        fd = os.open(path, os.O_RDONLY)
        try:
            for k, start in enumerate(starts):
                got = os.preadv(fd, [flat[k * length:(k + 1) * length]], offset + int(start))
                if got != length:
                    raise InputError(f"{path}: the {where} data ends early ({got} of {length} bytes at "
                                     f"offset {offset + int(start)}); is the file truncated or corrupt?")
        finally:
            os.close(fd)
    if read != want:
        out = np.ascontiguousarray(out[tuple(slice(a - r[0], b - r[0]) for (a, b), r in zip(want, read))])
    if not stored.isnative:                       # FITS is big-endian: swap in place, no copy
        out.byteswap(inplace=True)
        out = out.view(stored.newbyteorder("="))
    if flip is not None:
        out = out.view(native)
        out ^= flip
    return out


def write_section(path, extname, key, values):
    """Write ``values`` into ``array[key]`` of an image extension, in place (``pwrite``).

    Parameters
    ----------
    path : str or path-like
        FITS file (a working copy: the caller owns it).
    extname : str
        Image extension.
    key : index expression
        As for :func:`read_section`.
    values : array_like
        Values in the native (unscaled) type, e.g. ``uint32`` DQ, broadcastable to the section.
    """
    offset, shape, stored, native, flip = _layout(path, extname)
    ranges, drop = _ranges(key, shape)
    box = _box_size(ranges)
    target = tuple(n for d, n in enumerate(box) if d not in drop)
    values = np.broadcast_to(np.asarray(values, dtype=native), target).reshape(box)
    if flip is not None:
        values = (values ^ flip).view(stored.newbyteorder("="))
    raw = np.ascontiguousarray(values, dtype=stored)
    if not raw.size:
        return
    starts, length = _runs(ranges, shape, stored.itemsize)
    flat = raw.reshape(-1).view(np.uint8)
    fd = os.open(path, os.O_WRONLY)
    try:
        for k, start in enumerate(starts):
            os.pwritev(fd, [flat[k * length:(k + 1) * length]], offset + int(start))
    finally:
        os.close(fd)


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
    with atomic_path(dst) as tmp, open(tmp, "wb") as out, open(src, "rb") as inp:
        out.write(head)
        inp.seek(data_at)
        while True:
            block = inp.read(16 << 20)
            if not block:
                break
            out.write(block)
    return dst
