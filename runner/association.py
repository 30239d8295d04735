"""JWST association files (JSON): products and their members, resolved relative to the file."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

MEMBER_TYPES = {"science", "background", "imprint", "selfcal", "psf", "sourcecat", "segmap",
                "direct_image", "target_acquisition", "tsoimage"}


@dataclass
class Member:
    path: Path
    exptype: str


@dataclass
class AssociationProduct:
    name: str
    members: list = field(default_factory=list)

    def of_type(self, exptype):
        """Members of one exposure type."""
        return [m for m in self.members if m.exptype == exptype]


@dataclass
class Association:
    path: Path
    asn_type: str
    asn_id: str
    products: list
    raw: dict

    @classmethod
    def load(cls, path, check_members=True):
        """Read and check an association file.

        Raises
        ------
        InputError
            Not JSON, no products, a member without expname, or a member file missing.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: association file not found")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not a valid association (JSON error at line {exc.lineno}: {exc.msg})") from None
        if not isinstance(raw, dict) or not raw.get("products"):
            raise InputError(f"{path}: association has no 'products'")
        products = []
        for i, prod in enumerate(raw["products"]):
            members = []
            for j, m in enumerate(prod.get("members") or []):
                if "expname" not in m:
                    raise InputError(f"{path}: product {i} member {j} has no 'expname'")
                exptype = str(m.get("exptype", "science")).lower()
                mpath = (path.parent / m["expname"]).resolve() if not Path(m["expname"]).is_absolute() else Path(m["expname"])
                if check_members and not mpath.exists():
                    raise InputError(f"{path}: member {m['expname']} (product '{prod.get('name', i)}') not found in {path.parent}")
                members.append(Member(mpath, exptype))
            if not members:
                raise InputError(f"{path}: product '{prod.get('name', i)}' has no members")
            products.append(AssociationProduct(str(prod.get("name") or f"product{i}"), members))
        return cls(path, str(raw.get("asn_type", "")), str(raw.get("asn_id", "")), products, raw)


def is_association(path):
    """True for a ``.json`` input."""
    return str(path).lower().endswith(".json")
