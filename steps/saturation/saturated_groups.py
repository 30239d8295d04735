"""Saturation flagging of ramps (jwst / stcal ``saturation`` semantics, vectorised with numba).

For every pixel and integration:

1. **Threshold.** The SATURATION reference gives a per-pixel threshold in raw DN (bias
   included, as the step runs before superbias). NaN thresholds and pixels whose reference DQ
   has NO_SAT_CHECK are never flagged saturated, and get NO_SAT_CHECK in the pixel DQ. The
   reference DQ is ORed into the pixel DQ.
2. **Frame-averaged groups.** With ``nframes > 1`` a group is the mean of several frames, so a
   pixel whose *last* frame of a group reached the threshold shows a lower group value. As in
   stcal (``read_pattern``), the threshold of group ``g`` is diluted by
   ``mean(frames of g) / last frame of g`` (frame numbers counted from the start of the
   integration, 1-based). Only the signal part is diluted: with a superbias given, the
   effective threshold is ``bias + (threshold - bias) * dilution`` (the reference compares raw
   DN against thresholds that include the bias); without one, ``threshold * dilution``
   (stcal's behaviour when no bias is passed). ``use_readpatt=False`` disables both this and
   step 4.
3. **Flag.** SATURATED on the first group at or above the effective threshold and on all later
   groups (a SATURATED flag already present in the group DQ counts too).
   Groups with ``data <= atod_limit`` (A/D floor, 0 DN) get AD_FLOOR | DO_NOT_USE in that group
   only.
4. **Mid-group saturation of group 2 (index 1)** - stcal's check for grouped data, which we
   implement as it does (only for the second group, only when ngroups > 2 and nframes > 1):
   if group 3 (index 2) is saturated, group 2 is not, the signal rate measured in group 1
   projected to the last frame of group 3 stays below the threshold (so the ramp was not
   expected to saturate: something - typically a cosmic ray - happened), and group 2 exceeds
   ``bias + (threshold - bias) / nframes`` (at least one of its frames could have saturated),
   then group 2 and all later groups are flagged SATURATED.
5. **Growth.** SATURATED is grown to the ``(2 n_pix_grow_sat + 1)^2`` neighbourhood in every
   group (charge spilling), A/D-floor flags are not grown. Implemented as a minimum filter of
   the first-saturated-group index, which equals growing each group's flags.
"""
import numpy as np
from numba import njit, prange

__all__ = ["flag_saturation", "group_dilution"]

DO_NOT_USE = 1
SATURATED = 2
AD_FLOOR = 64
NO_SAT_CHECK = np.uint32(1 << 21)


def group_dilution(ngroups, nframes=1, groupgap=0, read_pattern=None):
    """Per-group threshold dilution ``mean(frames) / last frame`` for frame-averaged groups.

    Parameters
    ----------
    ngroups : int
        Groups per integration.
    nframes : int, optional
        Frames averaged per group (NFRAMES).
    groupgap : int, optional
        Frames dropped between groups (GROUPGAP).
    read_pattern : sequence of sequences of int, optional
        Explicit 1-based frame numbers of each group; overrides ``nframes``/``groupgap``.

    Returns
    -------
    dilution : numpy.ndarray
        float64 (ngroups,), each in (0, 1].
    read_pattern : list of list of int
        The frame numbers used.
    """
    if read_pattern is None:
        step = nframes + groupgap
        read_pattern = [[g * step + k + 1 for k in range(nframes)] for g in range(ngroups)]
    if len(read_pattern) < ngroups:
        raise ValueError(f"read_pattern has {len(read_pattern)} groups, expected {ngroups}")
    read_pattern = [list(map(int, rp)) for rp in read_pattern[:ngroups]]
    dil = np.array([np.mean(rp) / rp[-1] for rp in read_pattern], dtype=np.float64)
    return dil, read_pattern


@njit(parallel=True, cache=True)
def _first_saturated(data, groupdq, thresh, bias, dil, atod, check2, ratio02, inv_n1, first):
    # one (integration, row) per task; groups outer, columns inner (contiguous access)
    nints, ngroups, ny, nx = data.shape
    low = np.uint8(AD_FLOOR | DO_NOT_USE)
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        f = first[i, y]
        t = thresh[y]
        b = bias[y]
        for x in range(nx):
            f[x] = ngroups
        for g in range(ngroups):
            dg = dil[g]
            row = data[i, g, y]
            q = groupdq[i, g, y]
            for x in range(nx):
                v = row[x]
                if v <= atod:
                    q[x] |= low
                if f[x] == ngroups:
                    if (q[x] & SATURATED) or v >= b[x] + (t[x] - b[x]) * dg:
                        f[x] = g
        if check2:
            for x in range(nx):
                if f[x] == 2:
                    bx = b[x]
                    if ((data[i, 0, y, x] - bx) * ratio02 + bx < t[x]
                            and data[i, 1, y, x] > bx + (t[x] - bx) * inv_n1):
                        f[x] = 1


@njit(parallel=True, cache=True)
def _grow_min(first, n, ngroups):
    # (2n+1)^2 minimum filter, separable, out-of-array neighbours ignored
    nints, ny, nx = first.shape
    tmp = np.empty_like(first)
    out = np.empty_like(first)
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        for x in range(nx):
            m = ngroups
            for xx in range(max(0, x - n), min(nx, x + n + 1)):
                if first[i, y, xx] < m:
                    m = first[i, y, xx]
            tmp[i, y, x] = m
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        for x in range(nx):
            out[i, y, x] = tmp[i, y, x]
        for yy in range(max(0, y - n), min(ny, y + n + 1)):
            for x in range(nx):
                if tmp[i, yy, x] < out[i, y, x]:
                    out[i, y, x] = tmp[i, yy, x]
    return out


@njit(parallel=True, cache=True)
def _set_saturated(groupdq, first):
    nints, ngroups, ny, nx = groupdq.shape
    sat = np.uint8(SATURATED)
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        f = first[i, y]
        for g in range(ngroups):
            q = groupdq[i, g, y]
            for x in range(nx):
                if g >= f[x]:
                    q[x] |= sat


def flag_saturation(data, groupdq, pixeldq, sat_thresh, *, sat_dq=None, bias=None,
                    n_pix_grow_sat=1, atod_limit=0.0, nframes=1, groupgap=0,
                    read_pattern=None, use_readpatt=True):
    """Flag saturated and A/D-floor groups (group DQ and pixel DQ modified in place).

    Parameters
    ----------
    data : numpy.ndarray
        Raw ramp, float32 (nints, ngroups, ny, nx), DN (bias included). Not modified.
    groupdq : numpy.ndarray
        Group DQ, uint8, same shape. Modified in place.
    pixeldq : numpy.ndarray
        Pixel DQ, uint32 (ny, nx). Modified in place.
    sat_thresh : numpy.ndarray
        Saturation threshold per pixel, (ny, nx), raw DN. NaN means "no check".
    sat_dq : numpy.ndarray, optional
        Saturation reference DQ in standard bits, (ny, nx); NO_SAT_CHECK pixels are never
        flagged saturated; all bits are ORed into ``pixeldq``.
    bias : numpy.ndarray, optional
        Superbias (ny, nx), DN; makes the frame-averaging dilution apply to the signal only.
        NaN bias values are treated as 0.
    n_pix_grow_sat : int, optional
        Growth radius of the SATURATED flag in pixels (default 1: 3x3). 0 disables.
    atod_limit : float, optional
        A/D floor in DN (default 0): ``data <= atod_limit`` is flagged AD_FLOOR | DO_NOT_USE.
    nframes, groupgap : int, optional
        NFRAMES and GROUPGAP of the exposure.
    read_pattern : list of list of int, optional
        Explicit 1-based frame numbers per group (overrides nframes/groupgap).
    use_readpatt : bool, optional
        Use the frame-averaging dilution and the group-2 check (default True).

    Returns
    -------
    groupdq, pixeldq : numpy.ndarray
        The updated DQ arrays (same objects).

    Raises
    ------
    ValueError
        On shape mismatches (the message names the expected and found shapes).
    """
    if data.ndim != 4:
        raise ValueError(f"ramp data must be 4-D (nints, ngroups, ny, nx), found shape {data.shape}")
    if groupdq.shape != data.shape:
        raise ValueError(f"groupdq shape mismatch: expected {data.shape}, found {groupdq.shape}")
    shape = data.shape[-2:]
    sat_thresh = np.asarray(sat_thresh)
    if sat_thresh.shape != shape:
        raise ValueError(f"saturation threshold shape mismatch: expected {shape}, "
                         f"found {sat_thresh.shape}")
    nints, ngroups = data.shape[:2]

    thresh = sat_thresh.astype(np.float64)  # copy
    no_check = ~np.isfinite(thresh)
    if sat_dq is not None:
        sat_dq = np.asarray(sat_dq)
        if sat_dq.shape != shape:
            raise ValueError(f"saturation DQ shape mismatch: expected {shape}, found {sat_dq.shape}")
        sat_dq = sat_dq.astype(np.uint32)
        no_check |= (sat_dq & NO_SAT_CHECK) != 0
        np.bitwise_or(pixeldq, sat_dq, out=pixeldq)
    thresh[no_check] = np.inf
    pixeldq[no_check] |= NO_SAT_CHECK

    if bias is None:
        b = np.zeros(shape, dtype=np.float64)
    else:
        b = np.asarray(bias, dtype=np.float64)
        if b.shape != shape:
            raise ValueError(f"superbias shape mismatch: expected {shape}, found {b.shape}")
        b = np.where(np.isfinite(b), b, 0.0)

    grouped = use_readpatt and (read_pattern is not None or nframes > 1)
    if grouped:
        dil, rp = group_dilution(ngroups, nframes, groupgap, read_pattern)
    else:
        dil, rp = np.ones(ngroups), None
    check2 = grouped and ngroups > 2 and len(rp[1]) > 1
    ratio02 = rp[2][-1] / np.mean(rp[0]) if check2 else 1.0
    inv_n1 = 1.0 / len(rp[1]) if check2 else 1.0

    first = np.empty((nints,) + shape, dtype=np.int32)
    _first_saturated(data, groupdq, thresh, b, dil, float(atod_limit), check2, float(ratio02),
                     float(inv_n1), first)
    if n_pix_grow_sat and n_pix_grow_sat > 0:
        first = _grow_min(first, int(n_pix_grow_sat), ngroups)
    _set_saturated(groupdq, first)
    return groupdq, pixeldq
