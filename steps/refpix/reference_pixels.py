"""Reference-pixel correction of ramps (jwst ``refpix``, non-IRS2 algorithms), numba-parallel.

Near-IR detectors (:func:`correct_nir`)
---------------------------------------
H2RG detectors have a 4-pixel border of reference pixels (insensitive to light) and, in full
frame, four outputs (amplifiers) of 512 columns each along the fast axis. For every
integration and group:

1. **Top/bottom (per amplifier, odd/even columns).** The reference pixels in the top and bottom
   reference rows of each amplifier are pooled, separately for even and odd columns
   (``odd_even_columns``), and their 3-sigma clipped mean (``scipy.stats.sigmaclip``
   semantics: iterate mean +- nsigma * std until no value is rejected) is subtracted from every
   pixel of that amplifier and column parity. Pooling top and bottom equals jwst's average of
   the two means when both have the same number of good pixels.
2. **Side (1/f, ``use_side_ref_pixels``).** For each row, the mean of the left (and right)
   reference columns after step 1 is taken, running-median smoothed over
   ``side_smoothing_length`` rows (the window is truncated at the array edges), left and right
   are averaged (only one is used if only one side exists) and ``side_gain`` times the result is
   subtracted from the whole row.

Pixels with DO_NOT_USE in the pixel DQ and non-finite values are excluded from the means.
Reference pixels are the rows/columns of the 4-pixel border of the full frame that fall inside
the (sub)array (from ``xstart, ystart``, the 1-based SUBSTRT1/2, and ``full_shape``) plus
rows/columns entirely flagged REFERENCE_PIXEL in the pixel DQ.

The data are expected in the DMS orientation with FASTAXIS/SLOWAXIS given: when the fast
(amplifier) axis is the DMS y axis (``|fastaxis| == 2``, NIRSpec/NIRISS) the arrays are
transposed (as views) so the amplifiers run along columns. Flips (negative axes) need no action
here: the border and the 4 x 512 amplifier layout are symmetric, and the odd/even split only
groups columns by parity.

Subarrays: with ``noutputs`` 4 (subarray spanning the full fast axis) the full-frame algorithm
runs on whatever reference rows/columns exist. With one output (the default for narrower
subarrays) all reference pixels present are pooled into one odd/even pair of clipped means and
subtracted (no side correction), as in jwst. With no reference pixels at all nothing is done
and the returned info says so (jwst marks the step SKIPPED).

MIRI (:func:`correct_miri`)
---------------------------
Full-frame MIRI has 4 reference columns at each side, one per amplifier; the amplifiers are
interleaved (column ``x`` belongs to amplifier ``x % 4``). Following jwst: within each
integration, for every group after the first, the 3-sigma clipped means of (group - first
group) in the left and right reference column of each amplifier are computed, separately for
even and odd rows (``odd_even_rows``), averaged over the two sides and subtracted from all
pixels of that amplifier (and row parity). The first group is left unchanged (jwst subtracts
it, corrects the differences, and adds it back). MIRI subarrays are skipped, as in jwst.
"""
import numpy as np
from numba import njit, prange

__all__ = ["correct_nir", "correct_miri", "clipped_mean"]

DO_NOT_USE = np.uint32(1)
REFERENCE_PIXEL = np.uint32(1 << 31)


@njit(cache=True)
def _clipped_mean(buf, n, nsigma, keep):
    """3-sigma clipped mean of buf[:n] (scipy.stats.sigmaclip loop), 0.0 if n == 0."""
    if n == 0:
        return 0.0
    for k in range(n):
        keep[k] = True
    m = n
    while True:
        s = 0.0
        for k in range(n):
            if keep[k]:
                s += buf[k]
        mean = s / m
        ss = 0.0
        for k in range(n):
            if keep[k]:
                ss += (buf[k] - mean) ** 2
        std = np.sqrt(ss / m)
        lo = mean - nsigma * std
        hi = mean + nsigma * std
        newm = 0
        for k in range(n):
            if keep[k]:
                if buf[k] < lo or buf[k] > hi:
                    keep[k] = False
                else:
                    newm += 1
        if newm == m or newm == 0:
            if newm == 0:
                return mean
            break
        m = newm
    s = 0.0
    for k in range(n):
        if keep[k]:
            s += buf[k]
    return s / m


def clipped_mean(values, nsigma=3.0):
    """Sigma-clipped mean with ``scipy.stats.sigmaclip`` semantics (non-finite values dropped).

    Parameters
    ----------
    values : array_like
        Samples (any unit).
    nsigma : float, optional
        Clipping threshold in standard deviations (low = high).

    Returns
    -------
    float
        The clipped mean (0.0 for no finite sample).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    return float(_clipped_mean(v, v.size, float(nsigma), np.empty(v.size, dtype=np.bool_)))


@njit(cache=True)
def _running_median(v, length):
    n = v.size
    h = length // 2
    out = np.full(n, np.nan)
    buf = np.empty(2 * h + 1)
    for y in range(n):
        m = 0
        for k in range(max(0, y - h), min(n, y + h + 1)):
            if np.isfinite(v[k]):
                buf[m] = v[k]
                m += 1
        if m > 0:
            out[y] = np.median(buf[:m])
    return out


@njit(cache=True)
def _side_signal(plane, cols, bad, offs, col_cls):
    ny = plane.shape[0]
    out = np.full(ny, np.nan)
    for y in range(ny):
        s = 0.0
        m = 0
        for c in cols:
            if bad[y, c]:
                continue
            v = plane[y, c] - offs[col_cls[c]]
            if np.isfinite(v):
                s += v
                m += 1
        if m > 0:
            out[y] = s / m
    return out


@njit(parallel=True, cache=True)
def _nir_kernel(data, pys, pxs, cls_start, col_cls, left_cols, right_cols, bad, do_side,
                smooth_len, side_gain, nsigma, maxcount, transposed):
    # data: (nints, ngroups, ny, nx) in detector orientation, possibly a transposed view
    nints, ngroups, ny, nx = data.shape
    ncls = cls_start.size - 1
    for p in prange(nints * ngroups):
        plane = data[p // ngroups, p % ngroups]
        offs = np.zeros(ncls)
        buf = np.empty(max(maxcount, 1))
        keep = np.empty(max(maxcount, 1), dtype=np.bool_)
        for c in range(ncls):
            n = 0
            for k in range(cls_start[c], cls_start[c + 1]):
                v = plane[pys[k], pxs[k]]
                if np.isfinite(v):
                    buf[n] = v
                    n += 1
            offs[c] = _clipped_mean(buf, n, nsigma, keep)
        side = np.zeros(ny)
        if do_side:
            left = _side_signal(plane, left_cols, bad, offs, col_cls)
            right = _side_signal(plane, right_cols, bad, offs, col_cls)
            if left_cols.size > 0:
                left = _running_median(left, smooth_len)
            if right_cols.size > 0:
                right = _running_median(right, smooth_len)
            for y in range(ny):
                a = left[y]
                b = right[y]
                if np.isfinite(a) and np.isfinite(b):
                    side[y] = 0.5 * (a + b) * side_gain
                elif np.isfinite(a):
                    side[y] = a * side_gain
                elif np.isfinite(b):
                    side[y] = b * side_gain
        if transposed:  # memory order is (x, y): keep the inner loop contiguous
            for x in range(nx):
                ox = offs[col_cls[x]]
                for y in range(ny):
                    plane[y, x] = plane[y, x] - (ox + side[y])
        else:
            for y in range(ny):
                sy = side[y]
                for x in range(nx):
                    plane[y, x] = plane[y, x] - (offs[col_cls[x]] + sy)


def correct_nir(data, pixeldq=None, *, xstart=1, ystart=1, full_shape=(2048, 2048),
                noutputs=None, fastaxis=1, slowaxis=2, odd_even_columns=True,
                use_side_ref_pixels=True, side_smoothing_length=11, side_gain=1.0, nref=4,
                nsigma=3.0):
    """Near-IR reference-pixel correction (top/bottom odd/even offsets, side 1/f), in place.

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN, DMS orientation. Modified in place.
    pixeldq : numpy.ndarray, optional
        Pixel DQ, uint32 (ny, nx): DO_NOT_USE pixels are excluded from the means,
        REFERENCE_PIXEL marks extra reference rows/columns. Not modified.
    xstart, ystart : int, optional
        1-based SUBSTRT1/SUBSTRT2 (DMS) of the (sub)array in the full frame.
    full_shape : tuple of int, optional
        Full-frame (ny, nx) in DMS orientation.
    noutputs : int, optional
        NOUTPUTS (1 or 4). Default: 4 if the array spans the whole fast axis, else 1.
    fastaxis, slowaxis : int, optional
        FASTAXIS/SLOWAXIS keywords (+-1, +-2).
    odd_even_columns : bool, optional
        Separate means for even and odd columns (default True).
    use_side_ref_pixels : bool, optional
        Apply the side (row-by-row) correction (default True; 4-output data only).
    side_smoothing_length : int, optional
        Running-median height in rows (default 11).
    side_gain : float, optional
        Factor applied to the side signal before subtraction (default 1.0).
    nref : int, optional
        Width of the reference border (default 4).
    nsigma : float, optional
        Clipping threshold of the means (default 3).

    Returns
    -------
    dict
        ``{"applied": bool, "top_bottom": bool, "side": bool, "noutputs": int, "reason": str}``.
    """
    if data.ndim != 4:
        raise ValueError(f"ramp data must be 4-D (nints, ngroups, ny, nx), found shape {data.shape}")
    if pixeldq is not None and pixeldq.shape != data.shape[-2:]:
        raise ValueError(f"pixeldq shape mismatch: expected {data.shape[-2:]}, found {pixeldq.shape}")
    if abs(int(fastaxis)) == 2:
        d = data.swapaxes(-1, -2)
        pdq = None if pixeldq is None else pixeldq.T
        x0, y0 = ystart - 1, xstart - 1
        FY, FX = full_shape[1], full_shape[0]
    else:
        d, pdq = data, pixeldq
        x0, y0 = xstart - 1, ystart - 1
        FY, FX = full_shape
    ny, nx = d.shape[-2:]
    if x0 < 0 or y0 < 0 or x0 + nx > FX or y0 + ny > FY:
        raise ValueError(f"subarray at SUBSTRT=({xstart}, {ystart}) of shape {data.shape[-2:]} "
                         f"does not fit in the full frame {tuple(full_shape)}")
    X = x0 + np.arange(nx)
    Y = y0 + np.arange(ny)
    refrow = (Y < nref) | (Y >= FY - nref)
    refcol = (X < nref) | (X >= FX - nref)
    if pdq is not None:
        flagged = (pdq & REFERENCE_PIXEL) != 0
        refrow |= flagged.all(axis=1)
        refcol |= flagged.all(axis=0)
        bad = (pdq & DO_NOT_USE) != 0
    else:
        flagged = np.zeros((ny, nx), dtype=bool)
        bad = np.zeros((ny, nx), dtype=bool)
    if noutputs is None:
        noutputs = 4 if nx == FX else 1
    noutputs = int(noutputs)
    amp = np.minimum(X // (FX // noutputs), noutputs - 1) if noutputs > 1 else np.zeros(nx, int)
    parity = (X % 2) if odd_even_columns else np.zeros(nx, int)
    col_cls = (amp * 2 + parity).astype(np.int64)
    ncls = 2 * noutputs

    if noutputs == 1:
        pool = (refrow[:, None] | refcol[None, :] | flagged) & ~bad
        do_side = False
    else:
        pool = refrow[:, None] & ~bad & np.ones((1, nx), dtype=bool)
        do_side = bool(use_side_ref_pixels and refcol.any())
    pys, pxs = np.nonzero(pool)
    order = np.argsort(col_cls[pxs], kind="stable")
    pys, pxs = pys[order].astype(np.int64), pxs[order].astype(np.int64)
    counts = np.bincount(col_cls[pxs], minlength=ncls)
    cls_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    left_cols = np.nonzero(refcol & (X < FX // 2))[0].astype(np.int64)
    right_cols = np.nonzero(refcol & (X >= FX // 2))[0].astype(np.int64)

    info = {"applied": False, "top_bottom": pys.size > 0, "side": do_side, "noutputs": noutputs,
            "reason": ""}
    if pys.size == 0 and not do_side:
        info["reason"] = "no reference pixels in the array"
        return info
    _nir_kernel(d, pys, pxs, cls_start, col_cls, left_cols, right_cols,
                np.ascontiguousarray(bad), do_side, int(side_smoothing_length), float(side_gain),
                float(nsigma), int(counts.max()) if counts.size else 1,
                bool(d.strides[-1] > d.strides[-2]))
    info["applied"] = True
    return info


@njit(parallel=True, cache=True)
def _miri_kernel(data, bad, nref, odd_even, nsigma):
    nints, ngroups, ny, nx = data.shape
    npar = 2 if odd_even else 1
    for q in prange(nints * (ngroups - 1)):
        i = q // (ngroups - 1)
        g = q % (ngroups - 1) + 1
        offs = np.zeros((nref, npar))
        buf = np.empty(ny)
        keep = np.empty(ny, dtype=np.bool_)
        for a in range(nref):
            for par in range(npar):
                total = 0.0
                nside = 0
                for col in (a, nx - nref + a):
                    n = 0
                    for y in range(par, ny, npar):
                        if bad[y, col]:
                            continue
                        v = data[i, g, y, col] - data[i, 0, y, col]
                        if np.isfinite(v):
                            buf[n] = v
                            n += 1
                    if n > 0:
                        total += _clipped_mean(buf, n, nsigma, keep)
                        nside += 1
                if nside > 0:
                    offs[a, par] = total / nside
        for y in range(ny):
            par = y % npar
            for x in range(nx):
                data[i, g, y, x] = data[i, g, y, x] - offs[x % nref, par]


def correct_miri(data, pixeldq=None, *, odd_even_rows=True, full_shape=(1024, 1032), nref=4,
                 nsigma=3.0):
    """MIRI reference-pixel correction (per amplifier, odd/even rows, relative to group 1).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN. Modified in place (groups after the first).
    pixeldq : numpy.ndarray, optional
        Pixel DQ, uint32 (ny, nx); DO_NOT_USE reference pixels are excluded.
    odd_even_rows : bool, optional
        Separate means for even and odd rows (default True).
    full_shape : tuple of int, optional
        MIRI full-frame (ny, nx); any other array shape is a subarray and is skipped.
    nref : int, optional
        Reference columns per side = number of interleaved amplifiers (4).
    nsigma : float, optional
        Clipping threshold of the means (default 3).

    Returns
    -------
    dict
        ``{"applied": bool, "reason": str}``.
    """
    if data.ndim != 4:
        raise ValueError(f"ramp data must be 4-D (nints, ngroups, ny, nx), found shape {data.shape}")
    if data.shape[-2:] != tuple(full_shape):
        return {"applied": False, "reason": "MIRI subarray: no reference-pixel correction (as jwst)"}
    if data.shape[1] < 2:
        return {"applied": False, "reason": "fewer than 2 groups"}
    if pixeldq is not None:
        if pixeldq.shape != data.shape[-2:]:
            raise ValueError(f"pixeldq shape mismatch: expected {data.shape[-2:]}, "
                             f"found {pixeldq.shape}")
        bad = (pixeldq & DO_NOT_USE) != 0
    else:
        bad = np.zeros(data.shape[-2:], dtype=bool)
    _miri_kernel(data, bad, int(nref), bool(odd_even_rows), float(nsigma))
    return {"applied": True, "reason": ""}
