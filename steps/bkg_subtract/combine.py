"""Combining background exposures and subtracting them from a science exposure (plain arrays)."""
from __future__ import annotations

import numpy as np

DO_NOT_USE = np.uint32(1)


def combine_backgrounds(images, dqs=None, *, sigma=3.0, maxiters=None):
    """Sigma-clipped mean of background images, per pixel.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        Background count-rate images (same shape, DN/s or MJy/sr), 2-D or 3-D.
    dqs : sequence of numpy.ndarray, optional
        Their DQ arrays; pixels with DO_NOT_USE are ignored.
    sigma : float
        Clipping threshold in standard deviations (robust, from the MAD) around the median.
    maxiters : int or None
        Clipping iterations (None: until nothing changes, at most 10).

    Returns
    -------
    background : numpy.ndarray (float32)
        Combined background; NaN where no member has a good value.
    n_used : numpy.ndarray (int16)
        Members used per pixel.
    """
    stack = np.stack([np.asarray(im, np.float32) for im in images])
    good = np.isfinite(stack)
    if dqs is not None:
        good &= np.stack([(np.asarray(d) & DO_NOT_USE) == 0 for d in dqs])
    data = np.where(good, stack, np.nan)
    iters = 10 if maxiters is None else int(maxiters)
    if len(images) >= 3:
        for _ in range(iters):
            med = np.nanmedian(data, axis=0)
            mad = 1.4826 * np.nanmedian(np.abs(data - med), axis=0)
            clip = np.abs(data - med) > sigma * np.where(mad > 0, mad, np.inf)
            if not clip.any():
                break
            data[clip] = np.nan
    with np.errstate(invalid="ignore"):
        n_used = np.sum(np.isfinite(data), axis=0).astype(np.int16)
        background = np.where(n_used > 0, np.nansum(data, axis=0) / np.maximum(n_used, 1), np.nan)
    return background.astype(np.float32), n_used


def robust_level(image, dq=None, *, sigma=3.0, iters=5):
    """Sigma-clipped median of the good pixels of an image (a sky level)."""
    values = np.asarray(image, np.float64).ravel()
    ok = np.isfinite(values)
    if dq is not None:
        ok &= (np.asarray(dq).ravel() & DO_NOT_USE) == 0
    values = values[ok]
    if values.size == 0:
        return np.nan
    for _ in range(iters):
        med = np.median(values)
        mad = 1.4826 * np.median(np.abs(values - med))
        keep = np.abs(values - med) <= sigma * mad if mad > 0 else np.ones(values.size, bool)
        if keep.all():
            break
        values = values[keep]
    return float(np.median(values))


def subtract_background(data, dq, background, *, scale=1.0):
    """``data - scale * background`` in place; pixels with no background get DO_NOT_USE.

    Returns
    -------
    numpy.ndarray
        The subtracted background (scaled), for the record.
    """
    bkg = scale * background
    missing = ~np.isfinite(bkg)
    data -= np.where(missing, 0.0, bkg).astype(data.dtype)
    if dq is not None and missing.any():
        dq[np.broadcast_to(missing, dq.shape)] |= DO_NOT_USE
    return bkg
