"""MIRI reset-anomaly correction: subtract the RESET reference ramp group by group.

The RESET reference SCI has shape (nints_ref, ngroups_ref, ny, nx): integration ``i`` of the
science uses reference integration ``min(i, nints_ref - 1)`` (later integrations share the last
reference integration). If the reference has fewer groups than the science, only its groups are
subtracted (the anomaly has faded by then; jwst does the same). NaN reference values are
treated as 0. The reference DQ is ORed into the pixel DQ.
"""
import numpy as np

__all__ = ["subtract_reset"]


def subtract_reset(data, pixeldq, reset, reset_dq=None):
    """Subtract the reset-anomaly reference from the ramp (in place).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN. Modified in place.
    pixeldq : numpy.ndarray
        Pixel DQ, uint32 (ny, nx). Modified in place.
    reset : numpy.ndarray
        RESET reference SCI cut to the science subarray, (nints_ref, ngroups_ref, ny, nx) or
        (ngroups_ref, ny, nx), DN.
    reset_dq : numpy.ndarray, optional
        Reference DQ in standard bit values, (ny, nx).

    Returns
    -------
    data, pixeldq : numpy.ndarray
        The corrected arrays (same objects).
    """
    reset = np.asarray(reset)
    if reset.ndim == 3:
        reset = reset[None]
    if reset.ndim != 4 or reset.shape[-2:] != data.shape[-2:]:
        raise ValueError(f"RESET reference shape mismatch: expected (nints, ngroups, "
                         f"{data.shape[2]}, {data.shape[3]}), found {reset.shape}")
    nints, ngroups = data.shape[:2]
    ng = min(ngroups, reset.shape[1])
    for i in range(nints):
        ref = reset[min(i, reset.shape[0] - 1), :ng]
        if not np.isfinite(ref).all():
            ref = np.nan_to_num(ref, nan=0.0, posinf=0.0, neginf=0.0)
        np.subtract(data[i, :ng], ref.astype(data.dtype, copy=False), out=data[i, :ng])
    if reset_dq is not None:
        reset_dq = np.asarray(reset_dq)
        while reset_dq.ndim > 2:
            reset_dq = np.bitwise_or.reduce(reset_dq, axis=0)
        if reset_dq.shape != pixeldq.shape:
            raise ValueError(f"RESET DQ shape mismatch: expected {pixeldq.shape}, found {reset_dq.shape}")
        np.bitwise_or(pixeldq, reset_dq.astype(np.uint32), out=pixeldq)
    return data, pixeldq
