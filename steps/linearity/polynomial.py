"""Classical linearity correction: a per-pixel polynomial in the measured DN.

``corrected = sum_k c_k * d**k`` with the LINEARITY reference COEFFS of shape
(ncoeffs, ny, nx), evaluated by Horner's rule in float64 and stored back in float32.
As in jwst/stcal: pixels whose coefficients contain NaN, or are all zero, are left uncorrected
(identity) and flagged NO_LIN_CORR; pixels whose reference DQ already has NO_LIN_CORR are also
left alone; groups flagged SATURATED are not corrected (the polynomial is undefined above
saturation). The reference DQ is ORed into the pixel DQ.
"""
import numpy as np
from numba import njit, prange

__all__ = ["apply_linearity", "bad_coefficients"]

SATURATED = 2
NO_LIN_CORR = np.uint32(1 << 20)


def bad_coefficients(coeffs):
    """Pixels whose linearity coefficients cannot be used.

    Parameters
    ----------
    coeffs : numpy.ndarray
        (ncoeffs, ny, nx) polynomial coefficients (c_k in DN^(1-k)).

    Returns
    -------
    numpy.ndarray
        bool (ny, nx): any coefficient non-finite, or all coefficients zero.
    """
    return (~np.isfinite(coeffs)).any(axis=0) | (coeffs == 0).all(axis=0)


@njit(parallel=True, cache=True)
def _horner(data, groupdq, coeffs, skip):
    nints, ngroups, ny, nx = data.shape
    nc = coeffs.shape[0]
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        sk = skip[y]
        for g in range(ngroups):
            row = data[i, g, y]
            q = groupdq[i, g, y]
            for x in range(nx):
                if sk[x] or (q[x] & SATURATED):
                    continue
                d = np.float64(row[x])
                acc = np.float64(coeffs[nc - 1, y, x])
                for k in range(nc - 2, -1, -1):
                    acc = acc * d + np.float64(coeffs[k, y, x])
                row[x] = acc


def apply_linearity(data, groupdq, pixeldq, coeffs, lin_dq=None):
    """Apply the polynomial linearity correction (data and pixel DQ modified in place).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN (bias-subtracted for NIR). Modified in place.
    groupdq : numpy.ndarray
        Group DQ, uint8, same shape. Not modified (SATURATED groups are skipped).
    pixeldq : numpy.ndarray
        Pixel DQ, uint32 (ny, nx). Modified in place (NO_LIN_CORR, reference DQ).
    coeffs : numpy.ndarray
        LINEARITY COEFFS cut to the science subarray, (ncoeffs, ny, nx); ``c_0 + c_1 d + ...``.
    lin_dq : numpy.ndarray, optional
        LINEARITY DQ in standard bits, (ny, nx).

    Returns
    -------
    data, pixeldq : numpy.ndarray
        The corrected ramp (DN) and pixel DQ (same objects).

    Raises
    ------
    ValueError
        If ``coeffs`` is not (ncoeffs, ny, nx) for the science frame, or ``groupdq`` / ``lin_dq``
        have the wrong shape.
    """
    shape = data.shape[-2:]
    coeffs = np.asarray(coeffs)
    if coeffs.ndim != 3 or coeffs.shape[1:] != shape or coeffs.shape[0] < 1:
        raise ValueError(f"linearity COEFFS shape mismatch: expected (ncoeffs, {shape[0]}, "
                         f"{shape[1]}), found {coeffs.shape}")
    if groupdq.shape != data.shape:
        raise ValueError(f"groupdq shape mismatch: expected {data.shape}, found {groupdq.shape}")
    skip = bad_coefficients(coeffs)
    pixeldq[skip] |= NO_LIN_CORR
    if lin_dq is not None:
        lin_dq = np.asarray(lin_dq)
        if lin_dq.shape != shape:
            raise ValueError(f"linearity DQ shape mismatch: expected {shape}, found {lin_dq.shape}")
        lin_dq = lin_dq.astype(np.uint32)
        np.bitwise_or(pixeldq, lin_dq, out=pixeldq)
        skip |= (lin_dq & NO_LIN_CORR) != 0
    if coeffs.dtype not in (np.float32, np.float64) or not coeffs.dtype.isnative:
        coeffs = coeffs.astype(np.float64)
    # float32 references are read as they are (each coefficient widened to float64 in the
    # kernel: the same arithmetic without a float64 copy of the whole reference)
    _horner(data, groupdq, np.ascontiguousarray(coeffs), skip)
    return data, pixeldq
