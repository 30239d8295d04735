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

    def paths(self, exptype="science"):
        return [Path(m.path) for m in self.of_type(exptype)]

    def get(self, keyword, default=None):
        return self.meta.get(keyword, default)

    def save(self, path, overwrite=True):  # pragma: no cover - sets are not files
        raise InputError(f"{self.name}: a product set is not saved as one file; stage-3 steps emit their products")
