"""Association files (JSON) as the archive ships them.

An association is ``{"asn_type", "asn_rule", "asn_id", "asn_pool", "program", "target",
"version_id", "code_version", "degraded_status", "constraints", "products": [{"name",
"members": [{"expname", "exptype"}]}]}``. Member ``expname`` values are file names relative
to the association file's folder.

File names: ``jw<ppppp>-<asn_id>_<version_id>_<asn_type>_<nnnnn>_asn.json`` with
``asn_id`` ``o<obs>`` (observation candidate) or ``c<nnnn>`` (cross-observation candidate,
e.g. a coronagraph science + reference pair), ``version_id`` a fixed
``YYYYMMDDtHHMMSS`` stamp (so repeated runs give identical files).
Stage-3 product names: ``jw<ppppp>-<asn_id>_<target>_<instrument>_<optical elements>``.
"""

from __future__ import annotations

from pathlib import Path

from .uncal import write_json

__all__ = ["ASN_RULES", "make_association", "association_filename", "write_association",
           "level3_product_name"]

#: asn_type -> asn_rule (jwst association rule names)
ASN_RULES = {
    "image2": "candidate_Asn_Lv2Image",
    "tso-image2": "candidate_Asn_Lv2ImageTSO",
    "spec2": "candidate_Asn_Lv2Spec",
    "tso-spec2": "candidate_Asn_Lv2SpecTSO",
    "image3": "candidate_Asn_Lv3Image",
    "spec3": "candidate_Asn_Lv3SpecAux",
    "tso3": "candidate_Asn_Lv3TSO",
    "coron3": "candidate_Asn_Lv3Coron",
    "ami3": "candidate_Asn_Lv3AMI",
}

VERSION_ID = "20260101t000000"
CODE_VERSION = "webbcal-sim 0.1.0"


def level3_product_name(program: int, asn_id: str, target: str, instrument: str,
                        optical_elements: str) -> str:
    """``jw<ppppp>-<asn_id>_<target>_<instrument>_<optelem>`` (lower case)."""
    return f"jw{program:05d}-{asn_id}_{target}_{instrument}_{optical_elements}".lower()


def association_filename(program: int, asn_id: str, asn_type: str, index: int = 1) -> str:
    """``jw<ppppp>-<asn_id>_<version_id>_<asn_type>_<nnnnn>_asn.json``."""
    kind = asn_type.replace("tso-", "")
    return f"jw{program:05d}-{asn_id}_{VERSION_ID}_{kind}_{index:05d}_asn.json"


def make_association(asn_type: str, products, *, program: int, asn_id: str,
                     target: str = "t001", index: int = 1, rule: str | None = None) -> dict:
    """Build an association dict.

    Parameters
    ----------
    asn_type : str
        'image2', 'spec2', 'image3', 'spec3', 'tso3', 'coron3', 'ami3' (or 'tso-image2',
        'tso-spec2', written with asn_type image2 / spec2 and the TSO rule).
    products : list of (name, [(expname, exptype), ...])
        Products and their members; exptype 'science', 'psf', 'background', ...
    program : int
    asn_id : str
        'o001' or 'c1000' style.
    target : str
        Target identifier ('t001').
    index : int
        Sequence number in the file name.
    rule : str, optional
        asn_rule (default from :data:`ASN_RULES`).
    """
    fname = association_filename(program, asn_id, asn_type, index)
    pool = f"jw{program:05d}_{VERSION_ID}_pool.csv"
    return {
        "asn_type": asn_type.replace("tso-", ""),
        "asn_rule": rule or ASN_RULES[asn_type],
        "asn_id": asn_id,
        "asn_pool": pool,
        "program": f"{program:05d}",
        "target": target,
        "version_id": VERSION_ID,
        "code_version": CODE_VERSION,
        "degraded_status": "No known degraded exposures in association.",
        "constraints": "simulated",
        "products": [
            {"name": name,
             "members": [{"expname": e, "exptype": t} for e, t in members]}
            for name, members in products
        ],
        "_filename": fname,
    }


def write_association(outdir, asn: dict) -> str:
    """Write an association from :func:`make_association` into ``outdir``; returns its path."""
    asn = dict(asn)
    fname = asn.pop("_filename")
    return write_json(Path(outdir) / fname, asn)
