"""Rescale ramp data whose frames were summed on board with a divisor other than NFRAMES.

When ``FRMDIVSR != NFRAMES`` the on-board frame average was divided by FRMDIVSR (a power of
two) rather than by the number of frames, so the group values are NFRAMES / FRMDIVSR times too
large. Multiplying by ``FRMDIVSR / NFRAMES`` restores the true frame average.
"""
import numpy as np

__all__ = ["group_scale_factor", "scale_groups"]


def group_scale_factor(frmdivsr, nframes):
    """Return the factor ``FRMDIVSR / NFRAMES`` (1.0 when either is missing or they are equal).

    Parameters
    ----------
    frmdivsr : int or None
        FRMDIVSR keyword: the divisor used on board when averaging frames into a group.
    nframes : int or None
        NFRAMES keyword: the number of frames averaged into each group.

    Returns
    -------
    float
        Multiplicative factor (dimensionless).
    """
    if frmdivsr is None or nframes is None or int(frmdivsr) == int(nframes):
        return 1.0
    if nframes <= 0 or frmdivsr <= 0:
        raise ValueError(f"FRMDIVSR and NFRAMES must be positive; found FRMDIVSR={frmdivsr}, "
                         f"NFRAMES={nframes}")
    return float(frmdivsr) / float(nframes)


def scale_groups(data, frmdivsr, nframes):
    """Multiply the ramp by ``FRMDIVSR / NFRAMES`` when the two differ (in place).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN. Modified in place (no copy is made).
    frmdivsr : int or None
        FRMDIVSR keyword.
    nframes : int or None
        NFRAMES keyword.

    Returns
    -------
    data : numpy.ndarray
        The same array, scaled (DN).
    factor : float
        The factor applied (1.0 means nothing was done).
    """
    factor = group_scale_factor(frmdivsr, nframes)
    if factor != 1.0:
        np.multiply(data, data.dtype.type(factor), out=data)
    return data, factor
