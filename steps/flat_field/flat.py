"""Flat-field correction of imaging count rates (jwst ``flat_field`` semantics, imaging modes).

``cal = rate / flat``. Pixels whose flat is NaN, zero or negative, or flagged NO_FLAT_FIELD in
the flat's DQ, are not corrected (flat taken as 1) and get ``NO_FLAT_FIELD | DO_NOT_USE``.
Variances: ``VAR_POISSON`` and ``VAR_RNOISE`` are divided by ``flat**2``;
``VAR_FLAT = cal**2 * (flat_err / flat)**2`` (the flat's own error, propagated);
``ERR = sqrt(VAR_POISSON + VAR_RNOISE + VAR_FLAT)``. A flat ``(ny, nx)`` applies to every
integration of a ``(nints, ny, nx)`` cube.
"""
from __future__ import annotations

import numpy as np

from runner.dqflags import pixel

__all__ = ["apply_flat_field", "usable_flat"]

NO_FLAT_FIELD = pixel["NO_FLAT_FIELD"]
DO_NOT_USE = pixel["DO_NOT_USE"]


def usable_flat(flat, flat_dq=None, flat_err=None):
    """The flat with unusable pixels set to 1, their DQ, and a finite error array.

    Parameters
    ----------
    flat : ndarray (ny, nx)
        Relative response (dimensionless).
    flat_dq : ndarray uint32, optional
        Flat DQ (standard bit values).
    flat_err : ndarray, optional
        Flat uncertainty (dimensionless); NaN -> 0.

    Returns
    -------
    flat : ndarray float32
        1 where unusable.
    dq : ndarray uint32
        ``flat_dq`` plus ``NO_FLAT_FIELD | DO_NOT_USE`` where unusable.
    err : ndarray float32
        0 where unusable or missing.
    """
    flat = np.array(flat, dtype=np.float32)
    dq = np.zeros(flat.shape, np.uint32) if flat_dq is None else np.array(flat_dq, dtype=np.uint32)
    err = np.zeros(flat.shape, np.float32) if flat_err is None else np.array(flat_err, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(flat) | (flat <= 0) | ((dq & NO_FLAT_FIELD) != 0)
    dq[bad] |= np.uint32(NO_FLAT_FIELD | DO_NOT_USE)
    flat[bad] = 1.0
    err[bad | ~np.isfinite(err)] = 0.0
    return flat, dq, err


def apply_flat_field(data, dq, flat, flat_dq=None, flat_err=None, *, var_poisson=None,
                     var_rnoise=None, err=None):
    """Flat-field an image or a cube of integrations.

    Parameters
    ----------
    data : ndarray (ny, nx) or (nints, ny, nx)
        Count rate, DN/s.
    dq : ndarray uint32, same shape
        Science DQ.
    flat, flat_dq, flat_err : ndarray (ny, nx)
        Flat (dimensionless), its DQ and uncertainty.
    var_poisson, var_rnoise : ndarray, optional
        Variances, (DN/s)^2.
    err : ndarray, optional
        Used only when no variances are given: ``ERR / flat`` then combined with VAR_FLAT.

    Returns
    -------
    dict
        ``SCI``, ``DQ``, ``ERR``, ``VAR_FLAT`` and, when given, ``VAR_POISSON``, ``VAR_RNOISE``
        (float32 / uint32, the input's shape).
    """
    flat, fdq, ferr = usable_flat(flat, flat_dq, flat_err)
    sci = np.asarray(data, np.float32) / flat
    out = {"SCI": sci.astype(np.float32),
           "DQ": (np.asarray(dq, np.uint32) | fdq).astype(np.uint32)}
    flat2 = flat.astype(np.float64) ** 2
    var_flat = sci.astype(np.float64) ** 2 * ferr.astype(np.float64) ** 2 / flat2
    total = var_flat.copy()
    have_var = False
    for name, var in (("VAR_POISSON", var_poisson), ("VAR_RNOISE", var_rnoise)):
        if var is not None:
            v = np.asarray(var, np.float64) / flat2
            out[name] = v.astype(np.float32)
            total = total + v
            have_var = True
    if not have_var and err is not None:
        total = total + (np.asarray(err, np.float64) / flat) ** 2
    out["VAR_FLAT"] = var_flat.astype(np.float32)
    out["ERR"] = np.sqrt(total).astype(np.float32)
    return out
