"""MIRI reset switch charge decay (RSCD), the jwst 'baseline' algorithm: flag, do not correct.

The RSCD transient affects the first groups of every integration after the first (the first
integration follows many resets and is unaffected). The baseline algorithm sets DO_NOT_USE on
the first ``n_groups`` groups of integrations 2, 3, ... (``n_groups`` comes from the RSCD
reference file, ``group_skip`` in the reference pipeline). Integrations are left alone when
``ngroups < n_groups + 3`` so that at least three groups remain for jump detection.

``bright_use_group1`` (our reading of the jwst parameter of that name): pixels that would keep
fewer than two unsaturated groups after flagging (group ``n_groups + 1`` already SATURATED) are
not flagged, so a slope can still be formed for bright sources.
"""
import numpy as np

__all__ = ["flag_rscd_groups"]

DO_NOT_USE = np.uint8(1)
SATURATED = np.uint8(2)


def flag_rscd_groups(groupdq, n_groups, *, bright_use_group1=False):
    """Flag the first ``n_groups`` groups of integrations after the first (in place).

    Parameters
    ----------
    groupdq : numpy.ndarray
        Group DQ, uint8 (nints, ngroups, ny, nx). Modified in place.
    n_groups : int
        Number of initial groups to flag DO_NOT_USE in integrations 2+ (>= 0).
    bright_use_group1 : bool, optional
        Skip the flags in pixels already SATURATED in group ``n_groups + 1``. Default False.

    Returns
    -------
    bool
        True if flags were set, False if skipped (one integration, ``n_groups`` = 0, or too
        few groups).
    """
    n_groups = int(n_groups)
    if n_groups < 0:
        raise ValueError(f"n_groups must be >= 0, found {n_groups}")
    nints, ngroups = groupdq.shape[:2]
    if nints < 2 or n_groups == 0 or ngroups < n_groups + 3:
        return False
    if bright_use_group1:
        bright = (groupdq[1:, n_groups + 1] & SATURATED) != 0
        flag = np.where(bright, np.uint8(0), DO_NOT_USE)
        groupdq[1:, :n_groups] |= flag[:, None]
    else:
        groupdq[1:, :n_groups] |= DO_NOT_USE
    return True
