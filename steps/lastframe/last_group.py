"""MIRI last-frame correction: flag the final group of every integration DO_NOT_USE.

jwst ``lastframe``: applied only when NGROUPS > 2 (fewer would leave too few groups for later
steps). Only the group DQ changes.
"""
import numpy as np

__all__ = ["flag_last_group"]

DO_NOT_USE = np.uint8(1)


def flag_last_group(groupdq):
    """Set DO_NOT_USE on the last group of each integration when ngroups > 2 (in place).

    Parameters
    ----------
    groupdq : numpy.ndarray
        Group DQ, uint8 (nints, ngroups, ny, nx). Modified in place.

    Returns
    -------
    bool
        True if flags were set, False if skipped (ngroups <= 2).
    """
    if groupdq.shape[1] <= 2:
        return False
    groupdq[:, -1] |= DO_NOT_USE
    return True
