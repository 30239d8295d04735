"""Initialise the science pixel DQ from the MASK reference file.

The reference pipeline (jwst ``dq_init``) ORs the MASK reference DQ into the pixel DQ of a
ramp and leaves the group DQ untouched: pixels flagged DO_NOT_USE are excluded later by ramp
fitting through their pixel DQ. We do the same by default. ``flag_groups=True`` additionally
copies DO_NOT_USE into every group of those pixels (the behaviour the project notes describe);
it changes nothing downstream for ramp fitting but makes the group DQ self-contained.
"""
import numpy as np

__all__ = ["apply_mask"]

DO_NOT_USE = np.uint32(1)


def apply_mask(pixeldq, mask_dq, groupdq=None, *, flag_groups=False):
    """Combine the MASK reference DQ with the science pixel DQ (in place).

    Parameters
    ----------
    pixeldq : numpy.ndarray
        Science pixel DQ, uint32 (ny, nx). Modified in place.
    mask_dq : numpy.ndarray
        MASK reference DQ already translated to standard bit values and cut to the science
        subarray, integer (ny, nx).
    groupdq : numpy.ndarray, optional
        Group DQ, uint8 (nints, ngroups, ny, nx); only used with ``flag_groups``.
    flag_groups : bool, optional
        If True, set DO_NOT_USE (bit 1) in every group of pixels whose combined pixel DQ has
        DO_NOT_USE. Default False (the jwst behaviour: pixel DQ only).

    Returns
    -------
    numpy.ndarray
        The combined pixel DQ (uint32, same object as ``pixeldq``).

    Raises
    ------
    ValueError
        If the mask shape differs from the pixel DQ shape.
    """
    mask_dq = np.asarray(mask_dq)
    if mask_dq.shape != pixeldq.shape:
        raise ValueError(f"MASK DQ shape mismatch: expected {pixeldq.shape} (science pixel DQ), "
                         f"found {mask_dq.shape}")
    np.bitwise_or(pixeldq, mask_dq.astype(np.uint32, copy=False), out=pixeldq)
    if flag_groups and groupdq is not None:
        dnu = (pixeldq & DO_NOT_USE) != 0
        if dnu.any():
            groupdq[..., dnu] |= np.uint8(1)
    return pixeldq
