"""A set of products (an association product's members) for stage-3 steps.

Members are opened one at a time (:meth:`ProductSet.iter_products`), so a step can stream
hundreds of inputs without holding them all in memory.
"""
from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from .errors import InputError
from .product import Product


class ProductSet:
    """Members of one association product, with the metadata of the first science member."""

    kind = "set"

    def __init__(self, name, members, meta=None, association=None):
        self.name = name
        self.members = list(members)      # list of runner.association.Member
        self.association = association
        self.asn_product = None
        if meta is None:
            science = [m for m in self.members if m.exptype == "science"] or self.members
            try:
                meta = fits.getheader(science[0].path, 0)
            except Exception as exc:
                raise InputError(f"{science[0].path}: cannot read header ({exc})") from None
        self.meta = meta.copy()
        self.filename = f"{name}.fits"
        self.arrays, self.tables, self.ext_headers = {}, {}, {}
        #: folder where updated members are written (set by the runner; a temporary one otherwise)
        self.working_dir = None

    @classmethod
    def from_association(cls, association, asn_product):
        out = cls(asn_product.name, asn_product.members, association=association)
        out.asn_product = asn_product
        return out

    @property
    def rootname(self):
        return self.name

    def of_type(self, exptype):
        """Members (path, exptype) of one exposure type."""
        return [m for m in self.members if m.exptype == exptype]

    def iter_products(self, exptype="science"):
        """Open members of ``exptype`` one at a time."""
        for m in self.of_type(exptype):
            yield Product.open(m.path)

    def __len__(self):
        return len(self.members)

    def open(self, index, lazy=False):
        """Open member ``index`` (a fresh Product read from its current file).

        With ``lazy=True`` only headers, tables and the WCS are read; ``product.section(name)``
        then reads slices of an array from the file (bounded memory for long time series),
        while touching ``product.data`` etc. loads the arrays as usual.
        """
        if lazy:
            from .chunked import open_input

            return open_input(self.members[index].path)
        return Product.open(self.members[index].path)

    def working_copy(self, index):
        """Path of a private copy of member ``index`` in the working folder, made if needed.

        Steps modify that copy in place (:func:`runner.fits_sections.write_section`); the member
        now points at it, and the original input is never modified.
        """
        import shutil

        folder = self._working_folder()
        current = Path(self.members[index].path)
        if current.parent.resolve() == folder.resolve():
            return current
        where = folder / f"{index:04d}_{current.name}"
        shutil.copyfile(current, where)
        self.members[index] = type(self.members[index])(where, self.members[index].exptype)
        return where

    def _working_folder(self):
        import tempfile

        if self.working_dir is None:
            self.working_dir = Path(tempfile.mkdtemp(prefix="webbcal-set-"))
        Path(self.working_dir).mkdir(parents=True, exist_ok=True)
        return Path(self.working_dir)

    def indices(self, exptype="science"):
        """Indices of the members of ``exptype``."""
        return [i for i, m in enumerate(self.members) if m.exptype == exptype]

    def update(self, index, product):
        """Replace member ``index`` by ``product``, spilled to the working folder (bounded memory).

        Later steps open the updated file; the original input is never modified.
        """
        where = self._working_folder() / f"{index:04d}_{Path(self.members[index].path).name}"
        product.save(where)
        self.members[index] = type(self.members[index])(where, self.members[index].exptype)
        return where

    def paths(self, exptype="science"):
        return [Path(m.path) for m in self.of_type(exptype)]

    def get(self, keyword, default=None):
        return self.meta.get(keyword, default)

    def save(self, path, overwrite=True):  # pragma: no cover - sets are not files
        raise InputError(f"{self.name}: a product set is not saved as one file; stage-3 steps emit their products")
