"""Reading CRDS reference files and cutting them to the science subarray.

References are often full frame while science data are subarrays; both carry 1-based
SUBSTRT1/2 (x, y) and SUBSIZE1/2 (nx, ny) keywords that place them on the detector.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from .errors import ReferenceFileError
from .fits_sections import read_hdu_data


class ReferenceFile:
    """A reference file in memory.

    Attributes
    ----------
    path : pathlib.Path
    meta : astropy.io.fits.Header
        Primary header (REFTYPE, DETECTOR, SUBARRAY, USEAFTER, ...).
    arrays : dict
        EXTNAME -> numpy array.
    tables : dict
        EXTNAME -> structured array (``DQ_DEF``, ...).
    headers : dict
        EXTNAME -> extension header.
    """

    def __init__(self, path, meta, arrays, tables, headers):
        self.path = Path(path)
        self.meta = meta
        self.arrays = arrays
        self.tables = tables
        self.headers = headers

    @property
    def name(self):
        return self.path.name

    def get(self, keyword, default=None):
        """Primary-header keyword value, or ``default``."""
        return self.meta.get(keyword, default)

    def array(self, extname, product=None, required=True):
        """An image extension, cut to the science product's subarray when one is given.

        Parameters
        ----------
        extname : str
            Extension name (``SCI``, ``DQ``, ``COEFFS`` ...).
        product : runner.Product, optional
            The science product whose SUBSTRT/SUBSIZE define the region.
        required : bool
            Raise when the extension is absent (else return None).
        """
        arr = self.arrays.get(extname.upper())
        if arr is None:
            if required:
                raise ReferenceFileError(f"{self.path}: no {extname} extension in this {self.get('REFTYPE', '')} reference")
            return None
        if product is None:
            return arr
        return cut_to_subarray(arr, self.meta, product.meta, product.data.shape[-2:], source=str(self.path))

    def dq(self, product=None, extname="DQ"):
        """The DQ extension translated to standard bit values through DQ_DEF, cut to the product."""
        from .dqflags import translate

        arr = self.array(extname, product, required=False)
        if arr is None:
            return None
        return translate(arr, self.tables.get("DQ_DEF"))


def open_reference(path, reftype=None):
    """Open a reference file and check its REFTYPE.

    Parameters
    ----------
    path : str or path-like
        The reference FITS file.
    reftype : str, optional
        Expected REFTYPE (case-insensitive); a different one raises.

    Raises
    ------
    ReferenceFileError
        File missing, unreadable, or of the wrong type (one line naming the file).
    """
    path = Path(path)
    if not path.exists():
        raise ReferenceFileError(f"{path}: reference file not found")
    try:
        with fits.open(path, memmap=False) as hdul:
            meta = hdul[0].header.copy()
            names, tables, headers = [], {}, {}
            for index, hdu in enumerate(hdul[1:], start=1):
                name = (hdu.name or "").upper()
                headers[name] = hdu.header.copy()
                if isinstance(hdu, fits.BinTableHDU):
                    tables[name] = np.array(hdu.data)
                elif hdu.header.get("NAXIS", 0):
                    names.append((name, index))
        arrays = _LazyArrays(path, names)
    except Exception as exc:
        raise ReferenceFileError(f"{path}: cannot read reference file ({str(exc).splitlines()[0]})") from None
    found = str(meta.get("REFTYPE", "")).strip().lower()
    if reftype and found and found != reftype.lower():
        raise ReferenceFileError(f"{path}: is a {found.upper()} reference, expected {reftype.upper()}")
    if reftype and not found:
        raise ReferenceFileError(f"{path}: no REFTYPE keyword; expected a {reftype.upper()} reference")
    return ReferenceFile(path, meta, arrays, tables, headers)


class _LazyArrays(dict):
    """Image extensions of a reference file, read from disk on first access (one at a time).

    A dark reference holds SCI and ERR cubes; a step that needs only SCI never reads ERR.
    """

    def __init__(self, path, names):
        super().__init__()
        self._path = path
        self._index = dict(names)

    def __contains__(self, key):
        return key in self._index

    def keys(self):
        return self._index.keys()

    def __iter__(self):
        return iter(self._index)

    def __len__(self):
        return len(self._index)

    def get(self, key, default=None):
        if key not in self._index:
            return default
        return self[key]

    def __getitem__(self, key):
        if not dict.__contains__(self, key):
            if key not in self._index:
                raise KeyError(key)
            try:
                with fits.open(self._path, memmap=False) as hdul:
                    dict.__setitem__(self, key, read_hdu_data(self._path, hdul, self._index[key]))
            except Exception as exc:
                raise ReferenceFileError(f"{self._path}: cannot read the {key} extension "
                                         f"({str(exc).splitlines()[0]})") from None
        return dict.__getitem__(self, key)

    def items(self):
        return ((k, self[k]) for k in self._index)

    def values(self):
        return (self[k] for k in self._index)


def _placement(meta, shape):
    """1-based (xstart, ystart) of an array described by a header, defaulting to the origin."""
    xstart = int(meta.get("SUBSTRT1", 1) or 1)
    ystart = int(meta.get("SUBSTRT2", 1) or 1)
    return xstart, ystart


def cut_to_subarray(array, ref_meta, sci_meta, sci_shape, source="reference"):
    """Cut a reference array to the region of a science array.

    Parameters
    ----------
    array : numpy.ndarray
        Reference array whose last two axes are (y, x).
    ref_meta, sci_meta : Header-like
        Headers with SUBSTRT1/2 (1-based) of the reference and of the science data.
    sci_shape : tuple
        (ny, nx) of the science data.
    source : str
        File name for error messages.

    Returns
    -------
    numpy.ndarray
        A view of ``array`` with last two axes equal to ``sci_shape``.

    Raises
    ------
    ReferenceFileError
        When the reference does not cover the science region.
    """
    ny, nx = (int(s) for s in sci_shape)
    if array.shape[-2:] == (ny, nx) and _placement(ref_meta, array.shape) == _placement(sci_meta, sci_shape):
        return array
    rx, ry = _placement(ref_meta, array.shape)
    sx, sy = _placement(sci_meta, sci_shape)
    x0, y0 = sx - rx, sy - ry
    rny, rnx = array.shape[-2:]
    if x0 < 0 or y0 < 0 or x0 + nx > rnx or y0 + ny > rny:
        raise ReferenceFileError(
            f"{source}: reference covers x {rx}..{rx + rnx - 1}, y {ry}..{ry + rny - 1} "
            f"(SUBARRAY {ref_meta.get('SUBARRAY', '?')}) but the science data need "
            f"x {sx}..{sx + nx - 1}, y {sy}..{sy + ny - 1} (SUBARRAY {sci_meta.get('SUBARRAY', '?')})"
        )
    return array[..., y0:y0 + ny, x0:x0 + nx]
