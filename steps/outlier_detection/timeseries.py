"""Outlier detection for time series and other unresampled stacks (jwst TSO / coron modes).

Per pixel, the integrations of a cube are compared with a running median over
``rolling_window_width`` integrations (jwst >= 1.14), or with the median of all integrations
when the window is 0/1 or not smaller than the number of integrations. A value is an outlier
when ``|data - median| > snr * sigma``. ``sigma`` is the ERR array as in jwst
(``noise='err'``), or, with ``noise='robust'`` or where ERR is missing/zero, a robust per-pixel
scatter: 1.4826 x the median absolute deviation from the running median over integrations.

A smooth signal (a transit: all pixels of the star dimming over many integrations) follows the
running median and is not flagged; an isolated jump in one integration is.

Memory: the cube is processed in blocks of rows (``nints x rows x nx``, a few arrays), so a long
exposure never needs more than ``max_block_bytes`` of scratch. The running median keeps a sorted
window per pixel (compiled with numba): O(window) per integration, no window copies.
"""
from __future__ import annotations

import warnings

import numba
import numpy as np

__all__ = ["running_median", "flag_cube_outliers"]


@numba.njit(cache=True, nogil=True)
def _running_nanmedian_columns(data, window):  # pragma: no cover - compiled
    """Median of each full window along axis 0 of ``data`` (n, m), NaN ignored.

    A sorted buffer of the window's finite values is kept per column: each step removes the
    value leaving the window and inserts the one entering it (O(window) per step), instead of
    sorting every window.
    """
    n, m = data.shape
    core = np.empty((n - window + 1, m), np.float32)
    buf = np.empty(window, np.float64)
    for j in range(m):
        cnt = 0
        for i in range(n):
            if i >= window:                             # drop the value leaving the window
                old = data[i - window, j]
                if not np.isnan(old):
                    k = 0
                    while buf[k] != old:
                        k += 1
                    for q in range(k, cnt - 1):
                        buf[q] = buf[q + 1]
                    cnt -= 1
            new = data[i, j]
            if not np.isnan(new):                        # insert the entering value, sorted
                k = cnt
                while k > 0 and buf[k - 1] > new:
                    buf[k] = buf[k - 1]
                    k -= 1
                buf[k] = new
                cnt += 1
            if i >= window - 1:
                r = i - window + 1
                if cnt == 0:
                    core[r, j] = np.nan
                elif cnt % 2 == 1:
                    core[r, j] = buf[cnt // 2]
                else:
                    core[r, j] = np.float32(np.float32(buf[cnt // 2 - 1]) + np.float32(buf[cnt // 2])) / np.float32(2.0)
    return core


def running_median(cube, window):
    """Centred running nanmedian over axis 0 (integrations), jwst edge handling.

    Parameters
    ----------
    cube : numpy.ndarray
        ``(nints, ...)``, NaN = not used.
    window : int
        Window length (> 1). The first/last ``window // 2`` integrations take the median of the
        first/last full window, as jwst fills the edges.

    Returns
    -------
    numpy.ndarray
        Same shape as ``cube`` (float32); NaN where a window holds no finite value.
    """
    n = cube.shape[0]
    window = int(window)
    if window <= 1 or window >= n:
        raise ValueError(f"running_median: window {window} must be in 2..{n - 1}")
    flat = np.ascontiguousarray(np.asarray(cube, dtype=np.float32).reshape(n, -1))
    core = _running_nanmedian_columns(flat, window).reshape((n - window + 1,) + cube.shape[1:])
    out = np.empty(cube.shape, dtype=np.float32)
    lead = (window - 1) // 2
    out[lead:lead + core.shape[0]] = core
    out[:lead] = core[0]
    out[lead + core.shape[0]:] = core[-1]
    return out


def flag_cube_outliers(sci, err=None, usable=None, *, snr=5.0, rolling_window_width=25,
                       maskpt=0.7, noise="err", rows_per_block=None, max_block_bytes=128 << 20):
    """Outlier mask of a cube of integrations.

    Parameters
    ----------
    sci : numpy.ndarray
        ``(nints, ny, nx)`` data (any unit).
    err : numpy.ndarray, optional
        Same shape, 1-sigma uncertainty (same unit).
    usable : numpy.ndarray of bool, optional
        Same shape; False pixels (bad DQ) are left out of the median (weight 0 < ``maskpt``).
    snr : float
        Threshold in sigma (the first value of jwst's ``snr``).
    rolling_window_width : int
        Running-median window in integrations; <= 1 or >= nints: one median of all of them.
    maskpt : float
        Weight threshold: with DQ-mask weights (1 or 0) any pixel with weight < ``maskpt`` is
        left out, as jwst's weight threshold does for TSO.
    noise : {'err', 'robust'}
        Sigma from ERR (jwst) or from the per-pixel MAD across integrations.

    Returns
    -------
    numpy.ndarray of bool
        ``(nints, ny, nx)``, True for outliers (never for pixels with NaN data).
    """
    nints, ny, nx = sci.shape
    rolling = 1 < int(rolling_window_width) < nints
    w = int(rolling_window_width) if rolling else 1
    if rows_per_block is None:
        per_row = nints * nx * 4 * 8
        rows_per_block = max(1, int(max_block_bytes // max(per_row, 1)))
    mask = np.zeros(sci.shape, dtype=bool)
    for r0 in range(0, ny, rows_per_block):
        r1 = min(ny, r0 + rows_per_block)
        data = np.array(sci[:, r0:r1], dtype=np.float32)
        work = data.copy()
        if usable is not None:
            weight = np.asarray(usable[:, r0:r1], dtype=np.float32)
            work[weight < maskpt] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if rolling:
                med = running_median(work, w)
            else:
                med = np.broadcast_to(np.nanmedian(work, axis=0), work.shape)
            resid = data - med
            sigma = None
            if noise == "err" and err is not None:
                sigma = np.nan_to_num(np.asarray(err[:, r0:r1], dtype=np.float32))
            if sigma is None or not np.any(sigma > 0) or noise == "robust":
                r = np.where(np.isnan(work), np.nan, resid)
                mad = np.nanmedian(np.abs(r - np.nanmedian(r, axis=0)), axis=0)
                robust = np.broadcast_to(1.4826 * mad, data.shape)
                sigma = robust if sigma is None or noise == "robust" else np.where(sigma > 0, sigma, robust)
            with np.errstate(invalid="ignore"):
                mask[:, r0:r1] = np.abs(resid) > snr * sigma
    return mask
