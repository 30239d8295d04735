"""Subtract the superbias (per-pixel zero level) from every group of a ramp.

Follows jwst ``superbias``: NaN bias values are replaced by 0 (the pixel is left
uncorrected) and flagged UNRELIABLE_BIAS in the pixel DQ; the bias reference DQ is ORed into
the pixel DQ.
"""
import numpy as np

__all__ = ["subtract_bias"]

UNRELIABLE_BIAS = np.uint32(1 << 22)


def subtract_bias(data, pixeldq, bias, bias_dq=None):
    """Subtract the per-pixel bias from all groups of all integrations (in place).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN. Modified in place.
    pixeldq : numpy.ndarray
        Pixel DQ, uint32 (ny, nx). Modified in place.
    bias : numpy.ndarray
        Superbias SCI cut to the science subarray, (ny, nx), DN. Not modified.
    bias_dq : numpy.ndarray, optional
        Superbias DQ in standard bit values, (ny, nx).

    Returns
    -------
    data : numpy.ndarray
        Bias-subtracted ramp (DN), same object.
    pixeldq : numpy.ndarray
        Updated pixel DQ, same object.

    Raises
    ------
    ValueError
        If ``bias`` or ``bias_dq`` does not have the science frame shape.
    """
    shape = data.shape[-2:]
    bias = np.asarray(bias)
    if bias.shape != shape:
        raise ValueError(f"superbias shape mismatch: expected {shape}, found {bias.shape}")
    bad = ~np.isfinite(bias)
    if bad.any():
        bias = np.where(bad, 0.0, bias)
        pixeldq[bad] |= UNRELIABLE_BIAS
    if bias_dq is not None:
        bias_dq = np.asarray(bias_dq)
        if bias_dq.shape != shape:
            raise ValueError(f"superbias DQ shape mismatch: expected {shape}, found {bias_dq.shape}")
        np.bitwise_or(pixeldq, bias_dq.astype(np.uint32, copy=False), out=pixeldq)
    np.subtract(data, bias.astype(data.dtype, copy=False), out=data)
    return data, pixeldq
