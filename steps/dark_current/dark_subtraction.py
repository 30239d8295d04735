"""Dark-current subtraction with frame averaging to the science readout pattern.

Dark references are normally taken with NFRAMES=1, GROUPGAP=0 (every frame stored). For a
science readout with NFRAMES=n and GROUPGAP=g, group ``k`` averages frames
``drop_frames1 + k (n + g) ... + n - 1`` (0-based), so the dark is averaged over the same
frames (jwst ``dark_current``). A dark taken with the science readout pattern is used as is.
MIRI darks are 4-D (nints_dark, ngroups, ny, nx): science integration ``i`` uses dark
integration ``min(i, nints_dark - 1)``.

Differences from jwst (on purpose): a dark with too few frames/groups raises a ``ValueError``
(jwst logs a warning and skips the step); NaN dark values are treated as 0 and flagged
UNRELIABLE_DARK in the pixel DQ.
"""
import numpy as np
from numba import njit, prange

__all__ = ["average_dark_frames", "subtract_dark"]

UNRELIABLE_DARK = np.uint32(1 << 23)


@njit(parallel=True, cache=True)
def _average_frames(d4, out, first_frame, step, nframes):
    nd, ngroups, ny, nx = out.shape
    for r in prange(nd * ny):
        j = r // ny
        y = r % ny
        for k in range(ngroups):
            acc = np.zeros(nx)
            s = first_frame + k * step
            for f in range(s, s + nframes):
                src = d4[j, f, y]
                for x in range(nx):
                    acc[x] += src[x]
            o = out[j, k, y]
            for x in range(nx):
                o[x] = acc[x] / nframes


def average_dark_frames(dark, ngroups, *, nframes=1, groupgap=0, dark_nframes=1,
                        dark_groupgap=0, drop_frames1=0):
    """Build the dark ramp matching a science readout pattern.

    Parameters
    ----------
    dark : numpy.ndarray
        Dark SCI, (ngroups_dark, ny, nx) or MIRI (nints_dark, ngroups_dark, ny, nx), DN.
    ngroups : int
        Science groups per integration.
    nframes, groupgap : int, optional
        Science NFRAMES and GROUPGAP.
    dark_nframes, dark_groupgap : int, optional
        NFRAMES and GROUPGAP of the dark reference.
    drop_frames1 : int, optional
        Science DRPFRMS1: frames dropped at the start of each integration.

    Returns
    -------
    numpy.ndarray
        float32 (ngroups, ny, nx) or (nints_dark, ngroups, ny, nx), DN. When the readout
        patterns match and ``dark`` is float32 this is a view of ``dark`` (no copy): do not
        modify it in place.

    Raises
    ------
    ValueError
        If the dark has too few groups/frames, or was taken with a readout pattern that
        cannot be resampled to the science one.
    """
    dark = np.asarray(dark)
    if dark.ndim not in (3, 4):
        raise ValueError(f"dark SCI must be (ngroups, ny, nx) or (nints, ngroups, ny, nx); "
                         f"found shape {dark.shape}")
    squeeze = dark.ndim == 3
    d4 = dark[None] if squeeze else dark
    have = d4.shape[1]
    if (nframes, groupgap) == (dark_nframes, dark_groupgap) and drop_frames1 == 0:
        if have < ngroups:
            raise ValueError(f"dark has {have} groups but the science exposure needs {ngroups} "
                             f"(NFRAMES={nframes}, GROUPGAP={groupgap})")
        out = np.asarray(d4[:, :ngroups], dtype=np.float32)   # a view when already float32
    elif dark_nframes == 1 and dark_groupgap == 0:
        step = nframes + groupgap
        needed = drop_frames1 + (ngroups - 1) * step + nframes
        if have < needed:
            raise ValueError(f"dark has {have} frames but the science readout (NGROUPS={ngroups}, "
                             f"NFRAMES={nframes}, GROUPGAP={groupgap}, DRPFRMS1={drop_frames1}) "
                             f"needs {needed}")
        out = np.empty((d4.shape[0], ngroups) + d4.shape[2:], dtype=np.float32)
        _average_frames(np.asarray(d4, dtype=np.float32), out, int(drop_frames1), int(step),
                        int(nframes))
    else:
        raise ValueError(f"cannot resample a dark taken with NFRAMES={dark_nframes}, "
                         f"GROUPGAP={dark_groupgap} to NFRAMES={nframes}, GROUPGAP={groupgap}")
    return out[0] if squeeze else out


def subtract_dark(data, pixeldq, dark, *, dark_dq=None, nframes=1, groupgap=0, dark_nframes=1,
                  dark_groupgap=0, drop_frames1=0, return_dark=False):
    """Subtract the frame-averaged dark from every group (data and pixel DQ in place).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN. Modified in place.
    pixeldq : numpy.ndarray
        Pixel DQ, uint32 (ny, nx). Modified in place.
    dark : numpy.ndarray
        Dark SCI cut to the science subarray, (ngroups_dark, ny, nx) or MIRI
        (nints_dark, ngroups_dark, ny, nx), DN.
    dark_dq : numpy.ndarray, optional
        Dark DQ in standard bits, (ny, nx) (higher-dimensional DQ is OR-reduced).
    nframes, groupgap, dark_nframes, dark_groupgap, drop_frames1 : int, optional
        Readout pattern of the science and of the dark (see :func:`average_dark_frames`).
    return_dark : bool, optional
        Also return the averaged dark actually subtracted (jwst ``dark_output``).

    Returns
    -------
    data : numpy.ndarray
        Dark-subtracted ramp (DN), same object.
    averaged_dark : numpy.ndarray
        Only with ``return_dark``: float32 (ngroups, ny, nx) or (nints_dark, ngroups, ny, nx).
    """
    shape = data.shape[-2:]
    dark = np.asarray(dark)
    if dark.shape[-2:] != shape:
        raise ValueError(f"dark shape mismatch: expected (..., {shape[0]}, {shape[1]}), "
                         f"found {dark.shape}")
    avg = average_dark_frames(dark, data.shape[1], nframes=nframes, groupgap=groupgap,
                              dark_nframes=dark_nframes, dark_groupgap=dark_groupgap,
                              drop_frames1=drop_frames1)
    bad = ~np.isfinite(avg)
    if bad.any():
        pixeldq[bad.reshape((-1,) + shape).any(axis=0)] |= UNRELIABLE_DARK
        avg = np.where(bad, np.float32(0.0), avg)          # never write into the reference's array
    if dark_dq is not None:
        dq = np.asarray(dark_dq)
        while dq.ndim > 2:
            dq = np.bitwise_or.reduce(dq, axis=0)
        if dq.shape != shape:
            raise ValueError(f"dark DQ shape mismatch: expected {shape}, found {dq.shape}")
        np.bitwise_or(pixeldq, dq.astype(np.uint32), out=pixeldq)
    if avg.ndim == 3:
        np.subtract(data, avg, out=data)
    else:
        for i in range(data.shape[0]):
            np.subtract(data[i], avg[min(i, avg.shape[0] - 1)], out=data[i])
    return (data, avg) if return_dark else data
