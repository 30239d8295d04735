"""Outlier detection for dithered imaging (jwst ``outlier_detection``, imaging mode), arrays only.

The algorithm, as jwst / stcal run it:

1. each exposure is drizzled alone onto the common output grid ("single" resampling);
2. the median of those images, per output pixel, ignoring pixels whose drizzle weight is below
   ``maskpt`` times the (sigma-clipped) mean weight of that image;
3. the median is blotted (interpolated) back onto every input's pixels;
4. a pixel is an outlier when ``|sci - blot| > scale1 * deriv + snr1 * err`` anywhere in its
   3x3 neighbourhood *and* ``|sci - blot| > scale2 * deriv + snr2 * err`` itself, where
   ``deriv`` is the largest absolute difference of the blotted median to its four neighbours.

Steps 1-2 and 3-4 are here as functions over numpy arrays; the step streams the exposures.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

__all__ = ["DiskStack", "parse_pair", "compute_weight_threshold", "median_of_stack", "abs_deriv", "flag_cr"]


class DiskStack:
    """A float32 ``(n, ny, nx)`` stack kept in a raw file, written and read with plain file I/O.

    Unlike ``numpy.memmap`` the pages written or read do not stay mapped into the process, so
    the resident memory is one plane (write) or one row block (read), whatever ``n`` is.
    Supports ``stack[g] = plane`` and ``stack[:, r0:r1]``.
    """

    def __init__(self, path, shape):
        self.path = str(path)
        self.shape = tuple(int(v) for v in shape)
        with open(self.path, "wb") as fh:
            fh.truncate(int(np.prod(self.shape)) * 4)

    def __setitem__(self, index, plane):
        n, ny, nx = self.shape
        plane = np.ascontiguousarray(plane, dtype=np.float32)
        with open(self.path, "r+b") as fh:
            fh.seek(int(index) * ny * nx * 4)
            plane.tofile(fh)

    def __getitem__(self, key):
        n, ny, nx = self.shape
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)):
            raise IndexError("DiskStack supports stack[:, r0:r1] only")
        r0, r1, _ = key[1].indices(ny)
        out = np.empty((n, r1 - r0, nx), np.float32)
        with open(self.path, "rb") as fh:
            for g in range(n):
                fh.seek((g * ny + r0) * nx * 4)
                out[g] = np.fromfile(fh, dtype=np.float32, count=(r1 - r0) * nx).reshape(r1 - r0, nx)
        return out


def parse_pair(text, name):
    """Two floats from a jwst string parameter such as ``snr='5.0 4.0'``."""
    try:
        values = [float(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ValueError(f"{name}={text!r}: expected two numbers such as '5.0 4.0'")
    return values[0], values[1]


def compute_weight_threshold(weight, maskpt):
    """``maskpt`` times the 3-sigma-clipped mean of the positive, finite weights.

    Parameters
    ----------
    weight : numpy.ndarray
        Drizzle weight image (any units).
    maskpt : float
        Fraction (0-1) of the mean weight below which a pixel is left out of the median.
    """
    from astropy.stats import sigma_clip

    w = np.asarray(weight)
    good = w[(w > 0) & np.isfinite(w)]
    if good.size == 0:
        return np.inf
    if good.size > 2_000_000:                      # a regular subsample is enough for a mean
        good = good[:: good.size // 1_000_000]
    clipped = sigma_clip(good, sigma=3, maxiters=5, masked=False)
    return float(np.mean(clipped)) * float(maskpt)


def median_of_stack(sci_stack, wht_stack, thresholds, rows_per_block=None, max_block_bytes=64 << 20):
    """Per-pixel median over images, leaving out low-weight pixels; computed in row blocks.

    Parameters
    ----------
    sci_stack, wht_stack : array_like
        ``(nimages, ny, nx)``; may be disk-backed ``numpy.memmap`` stacks.
    thresholds : sequence of float
        Per-image weight threshold (:func:`compute_weight_threshold`).
    rows_per_block : int, optional
        Rows read at a time; default keeps a block under ``max_block_bytes``.

    Returns
    -------
    numpy.ndarray
        float32 ``(ny, nx)``, NaN where no image has enough weight.
    """
    n, ny, nx = sci_stack.shape
    if rows_per_block is None:
        rows_per_block = max(1, int(max_block_bytes // max(1, n * nx * 4 * 2)))
    thr = np.asarray(thresholds, dtype=np.float32)[:, None, None]
    median = np.full((ny, nx), np.nan, dtype=np.float32)
    for r0 in range(0, ny, rows_per_block):
        r1 = min(ny, r0 + rows_per_block)
        sci = np.array(sci_stack[:, r0:r1], dtype=np.float32)
        wht = np.asarray(wht_stack[:, r0:r1])
        sci[~(wht >= thr) | (wht <= 0)] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median[r0:r1] = np.nanmedian(sci, axis=0)
    return median


def abs_deriv(array):
    """Largest absolute difference of each pixel to its four neighbours (edges: available ones).

    NaN neighbours are ignored.
    """
    a = np.asarray(array, dtype=np.float64)
    out = np.zeros(a.shape, dtype=np.float64)
    for axis in (0, 1):
        for shift in (1, -1):
            diff = np.abs(a - np.roll(a, shift, axis=axis))
            # np.roll wraps around: the wrapped row/column has no neighbour on that side
            idx = [slice(None), slice(None)]
            idx[axis] = 0 if shift == 1 else -1
            diff[tuple(idx)] = 0.0
            np.fmax(out, diff, out=out)
    return out


def flag_cr(sci, err, blot, snr=(5.0, 4.0), scale=(1.2, 0.7), backg=0.0):
    """Outlier mask of one exposure against its blotted median (jwst ``flag_crs``).

    Parameters
    ----------
    sci : numpy.ndarray
        Input science image (e.g. MJy/sr), background *not* subtracted by the caller.
    err : numpy.ndarray
        Its 1-sigma uncertainty (same unit); NaN counts as 0.
    blot : numpy.ndarray
        The median blotted onto this image (background-subtracted level).
    snr : (float, float)
        Thresholds in units of ``err`` for the neighbourhood (first) and pixel (second) tests.
    scale : (float, float)
        Multipliers of the blotted median's derivative (interpolation error allowance).
    backg : float
        Background level to add to ``blot`` (the level skymatch measured but did not subtract,
        or the user's value).

    Returns
    -------
    numpy.ndarray of bool
        True for outliers. NaN science or blot pixels are never flagged.
    """
    snr1, snr2 = snr
    scale1, scale2 = scale
    err = np.nan_to_num(np.asarray(err, dtype=np.float64))
    deriv = abs_deriv(blot)
    diff = np.abs(np.asarray(sci, dtype=np.float64) - (np.asarray(blot, dtype=np.float64) + backg))
    with np.errstate(invalid="ignore"):
        mask1 = diff > scale1 * deriv + snr1 * err
        mask2 = diff > scale2 * deriv + snr2 * err
    grown = ndimage.convolve(mask1.astype(np.uint8), np.ones((3, 3), np.uint8), mode="nearest") > 0
    return grown & mask2
