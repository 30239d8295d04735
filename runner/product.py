"""One JWST product (a FITS file) in memory: primary header, image extensions, tables.

The layout follows the reference pipeline's files, so astropy, DS9 and stdatamodels open what we
write. A :class:`Product` is deliberately thin: arrays are plain numpy arrays, keyed by their
extension name (``SCI``, ``ERR``, ``DQ``, ``PIXELDQ``, ``GROUPDQ``, ``VAR_POISSON`` ...), with
attribute aliases in the jwst data-model style (``product.data`` is ``SCI``).
"""
from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from .atomic import atomic_path
from .errors import InputError
from .fits_sections import read_hdu_data

#: attribute name -> extension name
ALIASES = {
    "data": "SCI",
    "err": "ERR",
    "dq": "DQ",
    "pixeldq": "PIXELDQ",
    "groupdq": "GROUPDQ",
    "var_poisson": "VAR_POISSON",
    "var_rnoise": "VAR_RNOISE",
    "var_flat": "VAR_FLAT",
    "area": "AREA",
    "wht": "WHT",
    "con": "CON",
    "zeroframe": "ZEROFRAME",
}


@dataclass(frozen=True)
class Kind:
    """What a kind of product holds: its stdatamodels class and its image extensions.

    ``extensions`` maps EXTNAME -> (ndim, dtype); the first is the science array.
    """

    name: str
    datamodel: str
    extensions: dict
    required: tuple = ("SCI",)


_F4, _U4, _U1 = np.float32, np.uint32, np.uint8
KINDS = {
    "level1b": Kind("level1b", "Level1bModel", {"SCI": (4, np.uint16), "ZEROFRAME": (3, np.uint16)}),
    "ramp": Kind("ramp", "RampModel",
                 {"SCI": (4, _F4), "PIXELDQ": (2, _U4), "GROUPDQ": (4, _U1), "ERR": (4, _F4),
                  "ZEROFRAME": (3, _F4)}),
    "image": Kind("image", "ImageModel",
                  {"SCI": (2, _F4), "ERR": (2, _F4), "DQ": (2, _U4), "VAR_POISSON": (2, _F4),
                   "VAR_RNOISE": (2, _F4), "VAR_FLAT": (2, _F4), "AREA": (2, _F4),
                   "WHT": (2, _F4), "CON": (3, np.int32)}),
    "cube": Kind("cube", "CubeModel",
                 {"SCI": (3, _F4), "ERR": (3, _F4), "DQ": (3, _U4), "VAR_POISSON": (3, _F4),
                  "VAR_RNOISE": (3, _F4), "VAR_FLAT": (3, _F4), "AREA": (2, _F4)}),
}

#: product suffixes the reference pipeline uses; a known suffix is replaced, not appended
KNOWN_SUFFIXES = (
    "uncal", "ramp", "rate", "rateints", "trapsfilled", "dark", "bsub", "bsubints", "cal",
    "calints", "crf", "crfints", "i2d", "s2d", "s3d", "x1d", "x1dints", "c1d", "cat", "segm",
    "phot", "whtlt", "psfstack", "psfalign", "psfsub", "ami-oi", "aminorm-oi", "median",
    "blot", "outlier_i2d", "fitopt", "jump", "refpix", "linearity", "saturation", "dq_init",
    "superbias", "dark_current", "group_scale", "ipc", "persistence", "charge_migration",
    "gain_scale", "emicorr", "firstframe", "lastframe", "reset", "rscd", "assign_wcs",
    "flat_field", "photom", "resample", "tweakreg", "skymatch", "outlier_detection",
)


def rootname(filename):
    """Strip the folder, ``.fits`` and a known product suffix: ``jw..._nrca1_uncal.fits`` -> ``jw..._nrca1``."""
    stem = Path(str(filename)).name
    for ext in (".fits", ".fits.gz", ".fit"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    head, sep, tail = stem.rpartition("_")
    if sep and tail in KNOWN_SUFFIXES:
        return head
    return stem


class Product:
    """A JWST product in memory.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS` (``level1b``, ``ramp``, ``image``, ``cube``) or a free name for
        table-only products.
    meta : astropy.io.fits.Header, optional
        Primary header: almost all metadata, as in archive files.
    arrays : dict, optional
        EXTNAME -> numpy array.
    tables : dict, optional
        EXTNAME -> numpy structured array (``INT_TIMES``, ``GROUP``, ...).
    ext_headers : dict, optional
        EXTNAME -> extra header cards for that extension (BUNIT, WCS, ...).
    filename : str, optional
        The file it came from (used to name outputs).
    """

    def __init__(self, kind, meta=None, arrays=None, tables=None, ext_headers=None, filename=None,
                 wcs=None):
        self.kind = kind
        self.wcs = wcs
        self.meta = meta if meta is not None else fits.Header()
        self.arrays = dict(arrays or {})
        self.tables = dict(tables or {})
        self.ext_headers = dict(ext_headers or {})
        self.filename = filename

    # -- jwst-style attribute access ----------------------------------------------------------
    def __getattr__(self, name):
        if name == "wcs":
            return None
        ext = ALIASES.get(name)
        if ext is None:
            raise AttributeError(name)
        return self.__dict__["arrays"].get(ext)

    def __setattr__(self, name, value):
        ext = ALIASES.get(name)
        if ext is not None:
            if value is None:
                self.arrays.pop(ext, None)
            else:
                self.arrays[ext] = value
        else:
            object.__setattr__(self, name, value)

    def __repr__(self):
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.arrays.items())
        return f"<Product {self.kind} {self.filename or ''} [{shapes}]>"

    # -- convenience ---------------------------------------------------------------------------
    def get(self, keyword, default=None):
        """A keyword from the primary header, else from the SCI extension header, else ``default``.

        The archive writes most metadata in the primary header but the pointing and WCS
        keywords (V2_REF, RA_REF, XREF_SCI, ...) in the SCI header; this looks in both.
        """
        if keyword in self.meta:
            return self.meta[keyword]
        sci = self.ext_headers.get("SCI")
        if sci is not None and keyword in sci:
            return sci[keyword]
        return default

    def section(self, name):
        """Extension ``name`` as an array-like that can be sliced (None when absent).

        For a product in memory this is the array itself; a product opened lazily
        (:meth:`runner.product_set.ProductSet.open` with ``lazy=True``) returns a
        :class:`runner.fits_sections.ImageSection` that reads only the slices asked for, so a
        step can walk a long time series in blocks of rows or integrations.
        """
        return self.arrays.get(name)

    @property
    def rootname(self):
        """File root without folder, extension or product suffix."""
        return rootname(self.filename or self.meta.get("FILENAME", "product"))

    def copy(self):
        """Deep copy (arrays copied)."""
        return Product(
            self.kind,
            self.meta.copy(),
            {k: v.copy() for k, v in self.arrays.items()},
            {k: v.copy() for k, v in self.tables.items()},
            {k: v.copy() for k, v in self.ext_headers.items()},
            self.filename,
            wcs=copy.deepcopy(self.wcs),
        )

    # -- I/O ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path, kind=None):
        """Read a product from a FITS file, checking that it is usable.

        Parameters
        ----------
        path : str or path-like
            The FITS file.
        kind : str, optional
            Expected kind; by default guessed from DATAMODL and the SCI array.

        Raises
        ------
        InputError
            One line naming the file and what is wrong with it.
        """
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a FITS file")
        if path.stat().st_size == 0:
            raise InputError(f"{path}: file is empty")
        with open(path, "rb") as fh:
            start = fh.read(30)
        if not start.startswith(b"SIMPLE  ="):
            raise InputError(f"{path}: not a FITS file (no SIMPLE card at the start)")
        try:
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                hdul.verify("silentfix")
                meta = hdul[0].header.copy()
                arrays, tables, ext_headers = {}, {}, {}
                wcs = read_wcs(hdul, path)
                for index, hdu in enumerate(hdul[1:], start=1):
                    name = (hdu.name or "").upper()
                    if name in (ASDF_EXTNAME, WCS_EXTNAME):
                        continue
                    if isinstance(hdu, fits.BinTableHDU):
                        tables[name] = np.array(hdu.data) if hdu.data is not None else None
                    elif isinstance(hdu, fits.ImageHDU) and int(hdu.header.get("NAXIS", 0)) > 0:
                        arrays[name] = read_hdu_data(path, hdul, index)
                        ext_headers[name] = _extension_cards(hdu.header)
        except InputError:
            raise
        except Exception as exc:  # astropy raises many types for truncated/corrupt files
            raise InputError(f"{path}: cannot read FITS file ({_short(exc)}); is it truncated or corrupt?") from None
        if "SCI" not in arrays:
            raise InputError(f"{path}: no SCI image extension")
        kind = kind or _guess_kind(meta, arrays)
        product = cls(kind, meta, arrays, tables, ext_headers, filename=path.name, wcs=wcs)
        product.check(source=str(path))
        return product

    def check(self, source=None):
        """Check extension shapes and dtypes against the kind; raise InputError naming the file."""
        where = source or self.filename or "product"
        spec = KINDS.get(self.kind)
        if spec is None:
            return
        for ext in spec.required:
            if ext not in self.arrays:
                raise InputError(f"{where}: missing the {ext} extension a {self.kind} product needs")
        sci = self.arrays["SCI"]
        for ext, (ndim, _dtype) in spec.extensions.items():
            arr = self.arrays.get(ext)
            if arr is None:
                continue
            if arr.ndim != ndim:
                raise InputError(
                    f"{where}: {ext} has {arr.ndim} dimensions {tuple(arr.shape)}; "
                    f"a {self.kind} product needs {ndim}"
                )
            if ext != "SCI" and arr.shape[-2:] != sci.shape[-2:]:
                raise InputError(
                    f"{where}: {ext} shape {tuple(arr.shape)} does not match SCI {tuple(sci.shape)}"
                )
        if self.kind in ("level1b", "ramp"):
            from .exposure_types import EXP_TYPES, REQUIRED_KEYWORDS

            for key in REQUIRED_KEYWORDS:
                if key not in self.meta or str(self.meta[key]).strip() == "":
                    raise InputError(f"{where}: missing required keyword {key} in the primary header")
            exp_type = str(self.meta["EXP_TYPE"]).strip().upper()
            if exp_type not in EXP_TYPES:
                from .registry import suggest

                raise InputError(f"{where}: unknown EXP_TYPE '{exp_type}'{suggest(exp_type, EXP_TYPES)}")
        if self.kind in ("level1b", "ramp") and min(sci.shape) == 0:
            raise InputError(f"{where}: SCI has an empty axis {tuple(sci.shape)}")
        if self.kind == "level1b" and sci.dtype.kind not in "ui":
            raise InputError(f"{where}: raw SCI must be integer DN, found {sci.dtype}")

    def save(self, path, overwrite=True):
        """Write the product atomically (temporary file in the same folder, then rename).

        Parameters
        ----------
        path : str or path-like
            Destination; folders are created.
        overwrite : bool
            Refuse to replace an existing file when False.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: exists and overwrite=False")
        with atomic_path(path) as tmp, warnings.catch_warnings():
            # a long keyword comment is shortened to fit its 80-character card: harmless
            warnings.filterwarnings("ignore", message="Card is too long, comment will be truncated")
            hdul = self.to_hdulist(filename=path.name)
            hdul.writeto(tmp, overwrite=True, output_verify="silentfix")
        return path

    def to_hdulist(self, filename=None):
        """The product as an astropy HDUList (primary header updated with DATAMODL/FILENAME)."""
        meta = self.meta.copy()
        spec = KINDS.get(self.kind)
        if spec is not None:
            meta["DATAMODL"] = (spec.datamodel, "Type of data model")
        if filename:
            meta["FILENAME"] = (filename, "Name of the file")
        hdus = [fits.PrimaryHDU(header=meta)]
        arrays = dict(self.arrays)
        for name, arr in arrays.items():
            hdr = fits.Header()
            hdr.update(self.ext_headers.get(name, fits.Header()))
            if spec is not None and name in spec.extensions and arr.dtype != spec.extensions[name][1]:
                arr = arr.astype(spec.extensions[name][1])
            hdus.append(fits.ImageHDU(data=arr, header=hdr, name=name))
        for name, table in self.tables.items():
            if table is None:
                continue
            hdus.append(fits.BinTableHDU(data=table, name=name))
        if self.wcs is not None:
            hdus.append(wcs_hdu(self.wcs))
        return fits.HDUList(hdus)

    def conform(self):
        """Cast every array to the dtype its kind prescribes, in native byte order.

        A no-op (no copy) for arrays already so; algorithms compiled with numba need it for
        products built by hand from big-endian FITS data. Returns the product.
        """
        spec = KINDS.get(self.kind)
        for name, arr in list(self.arrays.items()):
            want = spec.extensions.get(name, (None, None))[1] if spec is not None else None
            dtype = np.dtype(want) if want is not None else arr.dtype.newbyteorder("=")
            if arr.dtype != dtype:
                self.arrays[name] = np.asarray(native(arr), dtype=dtype)
        return self

    def as_ramp(self):
        """A ramp product (float32 DN, zeroed PIXELDQ and GROUPDQ) from a level1b (uncal) one.

        The raw array is converted once; a ramp product is returned unchanged.
        """
        if self.kind == "ramp":
            return self
        if self.kind != "level1b":
            raise InputError(f"{self.filename}: a {self.kind} product cannot become a ramp")
        sci = self.arrays["SCI"]
        data = sci.astype(np.float32)
        nints, ngroups, ny, nx = data.shape
        arrays = {
            "SCI": data,
            "PIXELDQ": np.zeros((ny, nx), np.uint32),
            "GROUPDQ": np.zeros(data.shape, np.uint8),
        }
        if "ZEROFRAME" in self.arrays:
            arrays["ZEROFRAME"] = self.arrays["ZEROFRAME"].astype(np.float32)
        return Product("ramp", self.meta.copy(), arrays, dict(self.tables), dict(self.ext_headers),
                       self.filename)


def native(array):
    """``array`` in the machine's byte order (FITS is big-endian; numba needs native order)."""
    if array.dtype.byteorder in ("=", "|") or array.dtype.isnative:
        return array
    if array.flags.writeable:
        array.byteswap(inplace=True)           # no second copy of a large array
        return array.view(array.dtype.newbyteorder("="))
    return array.astype(array.dtype.newbyteorder("="))


#: legacy image extension (webbcal < 0.2) holding the gwcs as ASDF bytes; still read
WCS_EXTNAME = "WCS_ASDF"
#: the reference pipeline's extension: a binary table whose one cell holds an ASDF tree
ASDF_EXTNAME = "ASDF"


def wcs_hdu(wcs):
    """The ``ASDF`` binary-table extension holding ``{"meta": {"wcs": wcs}}``.

    This is where jwst's data models keep ``meta.wcs``: stdatamodels (and jwst's tools) opening
    our products get the gwcs object, as they do with archive products.
    """
    import asdf

    buf = io.BytesIO()
    asdf.AsdfFile({"meta": {"wcs": wcs}}).write_to(buf)
    raw = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    column = fits.Column(name="ASDF_METADATA", format=f"{raw.size}B", array=raw[None])
    return fits.BinTableHDU.from_columns([column], name=ASDF_EXTNAME)


def read_wcs(hdul, path):
    """The gwcs of an open product: ``meta.wcs`` of its ``ASDF`` extension (jwst and webbcal
    products), else the legacy ``WCS_ASDF`` extension; None when it has neither.

    Raises
    ------
    InputError
        When the extension exists but cannot be read.
    """
    import asdf

    names = {(h.name or "").upper(): i for i, h in enumerate(hdul)}
    if ASDF_EXTNAME in names:
        hdu = hdul[names[ASDF_EXTNAME]]
        try:
            raw = np.asarray(hdu.data[hdu.columns.names[0]][0], np.uint8).tobytes()
            with warnings.catch_warnings():
                # archive trees carry tags of schemas we do not need (only meta.wcs is read)
                warnings.simplefilter("ignore")
                with asdf.open(io.BytesIO(raw), lazy_load=True, memmap=False) as af:
                    meta = af.tree.get("meta") or {}
                    wcs = meta.get("wcs") if isinstance(meta, dict) else None
        except Exception as exc:  # noqa: BLE001 - corrupt or foreign trees: one clear line
            raise InputError(f"{path}: cannot read the ASDF extension ({_short(exc)})") from None
        if wcs is not None:
            return wcs
    if WCS_EXTNAME in names:
        try:
            data = np.asarray(hdul[names[WCS_EXTNAME]].data, np.uint8).tobytes()
            with asdf.open(io.BytesIO(data), lazy_load=False, memmap=False) as af:
                return af.tree["wcs"]
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{path}: cannot read the {WCS_EXTNAME} extension ({_short(exc)})") from None
    return None


def _guess_kind(meta, arrays):
    model = str(meta.get("DATAMODL", "")).strip()
    for kind in KINDS.values():
        if kind.datamodel == model:
            return kind.name
    sci = arrays["SCI"]
    if sci.ndim == 4:
        return "level1b" if sci.dtype.kind in "ui" and "PIXELDQ" not in arrays else "ramp"
    if sci.ndim == 3:
        return "cube"
    return "image"


_STRUCTURAL = {"XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "EXTNAME", "BZERO", "BSCALE",
               "TFIELDS", "EXTVER", "CHECKSUM", "DATASUM", "SIMPLE", "EXTEND"}


def _extension_cards(header):
    out = fits.Header()
    for card in header.cards:
        key = card.keyword
        if key in _STRUCTURAL or key.startswith("NAXIS"):
            continue
        out.append(card)
    return out


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
