"""Photometric calibration of imaging data (jwst ``photom`` semantics, imaging modes).

The PHOTOM reference is a table (``PHOTOM`` extension) of conversion factors ``photmjsr``
(MJy/sr per DN/s) and their ``uncertainty``, one row per optical configuration: NIRCam /
NIRISS / FGS rows are selected by ``filter`` and ``pupil``, MIRI rows by ``filter`` and
``subarray`` (a row with subarray ``GENERIC`` applies to every subarray). Data and ERR are
multiplied by ``photmjsr``, variances by its square.
"""
from __future__ import annotations

import numpy as np

__all__ = ["find_photom_row", "apply_photom", "MJSR_TO_UJA2", "describe_rows"]

#: 1 MJy/sr in microjansky per square arcsecond (23.5045)
MJSR_TO_UJA2 = 1e12 / (180.0 / np.pi * 3600.0) ** 2


def _column(table, name):
    for col in table.dtype.names:
        if col.lower() == name:
            return col
    return None


def _text(value):
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip().upper()


def find_photom_row(table, filter_name, pupil=None, subarray=None):
    """The ``(photmjsr, uncertainty)`` of the table row matching an exposure, or None.

    Parameters
    ----------
    table : numpy structured array
        PHOTOM rows (column names case-insensitive: filter, pupil or subarray, photmjsr,
        uncertainty).
    filter_name, pupil, subarray : str
        The exposure's FILTER, PUPIL, SUBARRAY. A table with a ``pupil`` column needs the
        pupil to match (a missing PUPIL matches ``N/A`` / ``ANY`` rows); one with a
        ``subarray`` column takes the exact subarray first, then ``GENERIC``.
    """
    fcol, pcol, scol = _column(table, "filter"), _column(table, "pupil"), _column(table, "subarray")
    vcol, ucol = _column(table, "photmjsr"), _column(table, "uncertainty")
    if fcol is None or vcol is None:
        return None
    want_f = _text(filter_name or "")
    candidates = [row for row in table if _text(row[fcol]) == want_f]
    if pcol is not None:
        want_p = _text(pupil) if pupil is not None else None
        candidates = [row for row in candidates
                      if _text(row[pcol]) in ({want_p, "ANY", "N/A"} if want_p else {"ANY", "N/A", ""})]
    if scol is not None:
        exact = [row for row in candidates if _text(row[scol]) == _text(subarray or "")]
        candidates = exact or [row for row in candidates if _text(row[scol]) in ("GENERIC", "ANY", "N/A")]
    if not candidates:
        return None
    row = candidates[0]
    unc = float(row[ucol]) if ucol is not None else float("nan")
    return float(row[vcol]), unc


def describe_rows(table, limit=12):
    """A short text listing of a PHOTOM table's selection columns (for error messages)."""
    cols = [c for c in (_column(table, "filter"), _column(table, "pupil"), _column(table, "subarray")) if c]
    items = ["/".join(_text(row[c]) for c in cols) for row in table[:limit]]
    more = f", ... ({len(table)} rows)" if len(table) > limit else ""
    return ", ".join(items) + more


def apply_photom(arrays, photmjsr):
    """Multiply science arrays by a conversion factor (in place).

    Parameters
    ----------
    arrays : dict
        EXTNAME -> ndarray; ``SCI``, ``ERR`` scaled by ``photmjsr``; ``VAR_POISSON``,
        ``VAR_RNOISE``, ``VAR_FLAT`` by its square (those present).
    photmjsr : float
        MJy/sr per DN/s.

    Returns
    -------
    dict
        ``arrays``.
    """
    c = np.float32(photmjsr)
    for name in ("SCI", "ERR"):
        if arrays.get(name) is not None:
            arrays[name] = (np.asarray(arrays[name], np.float32) * c).astype(np.float32)
    for name in ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        if arrays.get(name) is not None:
            arrays[name] = (np.asarray(arrays[name], np.float32) * (c * c)).astype(np.float32)
    return arrays
