"""MIRI first-frame correction: flag group 0 of every integration DO_NOT_USE.

jwst ``firstframe``: the first group is flagged only when NGROUPS > 3, so at least three groups
remain for jump detection and ramp fitting. With ``bright_use_group1`` (jwst >= 1.17 parameter),
pixels that would keep fewer than two unsaturated groups after the flag (group index 2 already
SATURATED) are left unflagged so that a slope can still be measured from groups 0-1.
"""
import numpy as np

__all__ = ["flag_first_group"]

DO_NOT_USE = np.uint8(1)
SATURATED = np.uint8(2)


def flag_first_group(groupdq, *, bright_use_group1=False):
    """Set DO_NOT_USE on the first group of each integration when ngroups > 3 (in place).

    Parameters
    ----------
    groupdq : numpy.ndarray
        Group DQ, uint8 (nints, ngroups, ny, nx). Modified in place.
    bright_use_group1 : bool, optional
        Leave group 0 usable in pixels already SATURATED in group index 2. Default False.

    Returns
    -------
    bool
        True if flags were set, False if skipped (ngroups <= 3).
    """
    ngroups = groupdq.shape[1]
    if ngroups <= 3:
        return False
    if bright_use_group1:
        keep = (groupdq[:, 2] & SATURATED) != 0
        groupdq[:, 0] |= np.where(keep, np.uint8(0), DO_NOT_USE)
    else:
        groupdq[:, 0] |= DO_NOT_USE
    return True
