"""Charge migration: flag groups whose signal exceeds the charge-spilling threshold.

jwst ``charge_migration``: in each integration the first group whose value exceeds
``signal_threshold`` and every later group are flagged CHARGELOSS | DO_NOT_USE (ramp fitting
then leaves them out of the slope but, in jwst, counts them in the read-noise variance).
Integrations with 1 or 2 groups are not flagged. Groups already SATURATED are neither tested
nor flagged (they are excluded anyway; adding CHARGELOSS to them would wrongly make them count
in the read-noise variance).
"""
import numpy as np
from numba import njit, prange

__all__ = ["flag_charge_migration"]

DO_NOT_USE = 1
SATURATED = 2
CHARGELOSS = 128


@njit(parallel=True, cache=True)
def _flag(data, groupdq, threshold):
    nints, ngroups, ny, nx = data.shape
    flag = np.uint8(CHARGELOSS | DO_NOT_USE)
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        on = np.zeros(nx, dtype=np.bool_)
        for g in range(ngroups):
            row = data[i, g, y]
            q = groupdq[i, g, y]
            for x in range(nx):
                if q[x] & SATURATED:
                    continue
                if not on[x] and row[x] > threshold:
                    on[x] = True
                if on[x]:
                    q[x] |= flag


def flag_charge_migration(data, groupdq, signal_threshold=25000.0):
    """Flag CHARGELOSS | DO_NOT_USE from the first group above ``signal_threshold`` (in place).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN. Not modified.
    groupdq : numpy.ndarray
        Group DQ, uint8, same shape. Modified in place.
    signal_threshold : float, optional
        Signal level in DN above which charge migration is assumed (default 25000).

    Returns
    -------
    bool
        True if the test ran, False if skipped (ngroups <= 2).
    """
    if groupdq.shape != data.shape:
        raise ValueError(f"groupdq shape mismatch: expected {data.shape}, found {groupdq.shape}")
    if data.shape[1] <= 2:
        return False
    _flag(data, groupdq, float(signal_threshold))
    return True
