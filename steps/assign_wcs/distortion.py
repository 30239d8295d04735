"""Reading DISTORTION and FILTEROFFSET references (ASDF files, CRDS layout).

A DISTORTION reference holds ``model``: an astropy transform from full-frame 0-based detector
pixels ``(x, y)`` to telescope ``(v2, v3)`` in arcsec, and ``meta`` (``reftype`` 'distortion',
``instrument.detector``, ``input_units`` pix, ``output_units`` arcsec, ...). A FILTEROFFSET
reference holds ``filters``: rows ``{filter, pupil, column_offset, row_offset}`` (pixels)
added to the detector coordinates before the distortion.
"""
from __future__ import annotations

from pathlib import Path

from runner.errors import ReferenceFileError

__all__ = ["read_distortion", "read_filter_offset", "subarray_shift"]


def _open_asdf(path, reftype):
    import asdf

    path = Path(path)
    if not path.exists():
        raise ReferenceFileError(f"{path}: {reftype.upper()} reference file not found")
    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            return dict(af.tree)
    except Exception as exc:  # asdf raises many types for corrupt files
        text = str(exc).strip().splitlines()
        raise ReferenceFileError(f"{path}: cannot read {reftype.upper()} reference as ASDF "
                                 f"({text[0] if text else type(exc).__name__})") from None


def _meta_get(meta, *keys):
    for key in keys:
        if not isinstance(meta, dict):
            return None
        meta = meta.get(key)
    return meta


def read_distortion(path, detector=None):
    """The transform and metadata of a DISTORTION reference.

    Parameters
    ----------
    path : str or Path
    detector : str, optional
        The exposure's DETECTOR; a reference made for another detector raises.

    Returns
    -------
    model : astropy.modeling.Model
        (x, y) full-frame pixels -> (v2, v3) arcsec.
    meta : dict

    Raises
    ------
    ReferenceFileError
        Unreadable file, not a distortion reference, no model, wrong units or detector.
    """
    from astropy.modeling import Model

    tree = _open_asdf(path, "distortion")
    meta = tree.get("meta") or {}
    reftype = str(meta.get("reftype", "")).lower()
    if reftype != "distortion":
        raise ReferenceFileError(f"{path}: meta.reftype is '{reftype or 'missing'}', expected a DISTORTION reference")
    model = tree.get("model")
    if not isinstance(model, Model):
        raise ReferenceFileError(f"{path}: no astropy.modeling transform under 'model'")
    if model.n_inputs != 2 or model.n_outputs != 2:
        raise ReferenceFileError(f"{path}: the model maps {model.n_inputs} -> {model.n_outputs} "
                                 f"coordinates; an imaging distortion maps (x, y) -> (v2, v3)")
    out_units = str(meta.get("output_units", "arcsec")).strip().lower()
    if out_units not in ("arcsec", "arcsecond", "arcseconds"):
        raise ReferenceFileError(f"{path}: output_units '{out_units}', expected arcsec")
    ref_det = str(_meta_get(meta, "instrument", "detector") or "").upper()
    if detector and ref_det and ref_det not in ("ANY", "N/A", "MULTIPLE") and ref_det != str(detector).upper():
        raise ReferenceFileError(f"{path}: DISTORTION made for detector {ref_det}, the exposure is {str(detector).upper()}")
    return model, meta


def read_filter_offset(path, filter_name, pupil=None):
    """``(column_offset, row_offset)`` in pixels for a filter / pupil, or None when not listed."""
    tree = _open_asdf(path, "filteroffset")
    rows = tree.get("filters") or []
    for row in rows:
        if str(row.get("filter", "")).upper() != str(filter_name or "").upper():
            continue
        rp = row.get("pupil")
        if rp is not None and pupil is not None and str(rp).upper() not in (str(pupil).upper(), "N/A", "ANY"):
            continue
        return float(row.get("column_offset", 0.0)), float(row.get("row_offset", 0.0))
    return None


def subarray_shift(xstart, ystart):
    """``Shift(SUBSTRT1 - 1) & Shift(SUBSTRT2 - 1)``: subarray pixels -> full-frame pixels, or None."""
    from astropy.modeling.models import Shift

    xstart, ystart = int(xstart or 1), int(ystart or 1)
    if xstart == 1 and ystart == 1:
        return None
    model = Shift(xstart - 1) & Shift(ystart - 1)
    model.name = "subarray2full"
    return model
