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

Three refinements (webbcal; they matter for the few exposures of a typical dither pattern,
where one outlier moves the median; each can be switched off to get jwst's behaviour):

* ``maskpt`` leaves a low-weight pixel out of the median only where at least
  :data:`MIN_GOOD_IMAGES` images remain (a pixel whose ramp had a jump has a larger read-noise
  variance, hence a lower inverse-variance weight; with a high cosmic-ray density jwst's rule
  often leaves two values, whose median, their mean, carries half of any outlier among them);
* a value more than :data:`REJECT_NSIGMA` robust standard deviations from the median of the
  *other* values, while those agree within that limit (at least 3 values), is left out and the
  median of the others taken (:func:`median_of_stack`, ``reject_nsigma``). With 3 exposures
  the median of an outlier and two good values is the larger good value: biased high by 0.56
  sigma of one image, which hides outliers a few sigma above the threshold. (drizzlepac's
  ``minmed`` and ``combine_nhigh`` served the same purpose for few images.)
* ``deriv`` is the derivative of the blotted median *less its noise*: the median's noise gives a
  derivative floor in blank sky (about one ``err`` for 3 exposures) which jwst's
  ``scale * deriv`` allowance for interpolation errors turns into a higher threshold where there
  is no structure to interpolate. :func:`flag_cr` subtracts the image's median derivative in
  quadrature (``deriv_noise_floor``).

On simulated 3-dither NIRCam imaging with a high cosmic-ray density
(tests/test_imaging_end_to_end.py) these raise the fraction of the cosmic rays left by
detector1 that outlier_detection flags from 68 % to 99 % for those that would stand out by more
than 5 sigma in the mosaic (the ``maskpt`` fallback does most of it), and from 42 % to 81 % for
all left more than 5 sigma above the true rate (the rejection and the derivative floor matter
there), with no measurable rise of the false flags (about 1e-5 of the good pixels).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

__all__ = ["DiskStack", "parse_pair", "compute_weight_threshold", "median_of_stack",
           "leave_one_out_medians", "abs_deriv",
           "derivative_noise_floor", "flag_cr", "MIN_GOOD_IMAGES", "REJECT_NSIGMA"]


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


#: fewest images a median pixel keeps before ``maskpt`` is allowed to drop low-weight ones
MIN_GOOD_IMAGES = 3
#: a value this many robust sigmas of its image from the median of the others is rejected
REJECT_NSIGMA = 4.0
#: pixels sampled per image for its robust sigma
_SIGMA_SAMPLES = 250_000


def _block_values(sci_stack, wht_stack, thr, r0, r1, min_good):
    """Stack rows ``r0:r1`` with unusable values set to NaN (see :func:`median_of_stack`)."""
    sci = np.array(sci_stack[:, r0:r1], dtype=np.float32)
    wht = np.asarray(wht_stack[:, r0:r1])
    positive = (wht > 0) & np.isfinite(sci)
    good = positive & (wht >= thr)
    ngood = good.sum(axis=0)
    fill = (ngood < min_good) & (positive.sum(axis=0) > ngood)
    use = np.where(fill[None], positive, good)
    sci[~use] = np.nan
    return sci


def leave_one_out_medians(values):
    """Median of the *other* values, for every value of a stack.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, ...)`` with NaN for missing values.

    Returns
    -------
    numpy.ndarray
        Same shape, float32: element ``j`` is the median of the finite values other than
        ``values[j]``; NaN where ``values[j]`` is NaN or no other value exists.
    """
    values = np.asarray(values, dtype=np.float32)
    n = values.shape[0]
    order = np.argsort(values, axis=0)                        # NaN sort last
    srt = np.take_along_axis(values, order, axis=0)
    rank = np.empty_like(order)                               # place of each value in srt
    positions = np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (values.ndim - 1)), order.shape)
    np.put_along_axis(rank, order, positions, axis=0)
    others = np.isfinite(values).sum(axis=0) - 1

    def kth(k):
        # the k-th smallest of the others: skip the value's own place in the sorted order
        idx = np.where(k[None] < rank, k[None], k[None] + 1)
        return np.take_along_axis(srt, np.clip(idx, 0, n - 1), axis=0)

    lo = kth(np.maximum(others - 1, 0) // 2)
    hi = kth(np.maximum(others, 0) // 2)
    out = 0.5 * (lo + hi)
    out[~np.isfinite(values) | (others < 1)[None]] = np.nan
    return out


def median_of_stack(sci_stack, wht_stack, thresholds, rows_per_block=None, max_block_bytes=64 << 20,
                    *, min_good=MIN_GOOD_IMAGES, reject_nsigma=REJECT_NSIGMA):
    """Per-pixel median over images, leaving out low-weight pixels; computed in row blocks.

    A value is used where its weight is positive and at least the image's threshold; where fewer
    than ``min_good`` values pass, every positive-weight value is used. Then, where at least 3
    values remain, each value is compared with the median of the others, in units of its
    image's robust standard deviation of that difference (1.4826 x its median absolute value,
    sampled over the image): the value most discrepant is left out when it is more than
    ``reject_nsigma`` away and every other value lies within ``reject_nsigma`` of the others'
    median, which is then taken. Elsewhere (no outlier, or several discordant values) the plain
    median is kept.

    Parameters
    ----------
    sci_stack, wht_stack : array_like
        ``(nimages, ny, nx)`` (data units, e.g. MJy/sr; drizzle weights); may be disk-backed
        (:class:`DiskStack`, ``numpy.memmap``): they are read in row blocks, twice when
        rejecting.
    thresholds : sequence of float
        Per-image weight threshold (:func:`compute_weight_threshold`).
    rows_per_block : int, optional
        Rows read at a time; default keeps a block under ``max_block_bytes``.
    min_good : int
        Values a pixel keeps before low-weight ones may be dropped.
    reject_nsigma : float or None
        Rejection threshold in robust sigmas; None: plain median (jwst).

    Returns
    -------
    numpy.ndarray
        float32 ``(ny, nx)``, NaN where no image has weight. Independent of ``rows_per_block``.
    """
    n, ny, nx = sci_stack.shape
    if rows_per_block is None:
        # the rejection pass holds ~12 arrays of the block (sorting, leave-one-out medians)
        rows_per_block = max(1, int(max_block_bytes // max(1, n * nx * 4 * 12)))
    thr = np.asarray(thresholds, dtype=np.float32)[:, None, None]
    median = np.full((ny, nx), np.nan, dtype=np.float32)
    reject = reject_nsigma is not None and n >= 3
    step = max(1, int(np.ceil(np.sqrt(ny * nx / _SIGMA_SAMPLES))))
    deviations = [[] for _ in range(n)]
    for r0 in range(0, ny, rows_per_block):
        r1 = min(ny, r0 + rows_per_block)
        sci = _block_values(sci_stack, wht_stack, thr, r0, r1, min_good)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median[r0:r1] = np.nanmedian(sci, axis=0)
        rows = np.arange(r0, r1)
        sample = rows[rows % step == 0] - r0
        if reject and sample.size:
            sub = sci[:, sample, ::step]
            dev = np.abs(sub - leave_one_out_medians(sub))
            for j in range(n):
                d = dev[j][np.isfinite(dev[j])]
                if d.size:
                    deviations[j].append(d)
    if not reject:
        return median
    sigma = np.full(n, np.inf, dtype=np.float32)
    for j in range(n):
        if deviations[j]:
            value = 1.4826 * float(np.median(np.concatenate(deviations[j])))
            if np.isfinite(value) and value > 0:
                sigma[j] = value
    del deviations
    limit = float(reject_nsigma)
    for r0 in range(0, ny, rows_per_block):
        r1 = min(ny, r0 + rows_per_block)
        sci = _block_values(sci_stack, wht_stack, thr, r0, r1, min_good)
        count = np.isfinite(sci).sum(axis=0)
        if not (count >= 3).any():
            continue
        loo = leave_one_out_medians(sci)
        with np.errstate(invalid="ignore"):
            z = np.abs(sci - loo) / sigma[:, None, None]
        z = np.where(np.isfinite(z), z, -1.0)
        worst = np.argmax(z, axis=0)
        zmax = np.take_along_axis(z, worst[None], axis=0)[0]
        cand = (count >= 3) & (zmax > limit)
        if not cand.any():
            continue
        yy, xx = np.nonzero(cand)
        jj = worst[yy, xx]
        new = loo[jj, yy, xx]                                   # median of the others
        rest = sci[:, yy, xx]
        rest[jj, np.arange(yy.size)] = np.nan
        with np.errstate(invalid="ignore"):
            spread = np.abs(rest - new[None]) / sigma[:, None]
        spread = np.where(np.isfinite(spread), spread, 0.0).max(axis=0)
        ok = spread <= limit
        median[r0:r1][yy[ok], xx[ok]] = new[ok]
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


def derivative_noise_floor(deriv, valid=None):
    """The derivative a noise-only blotted median has: the median of ``deriv`` (data units).

    Over the finite pixels (and ``valid`` ones when given); 0 when there are none.
    """
    d = np.asarray(deriv, dtype=np.float64)
    ok = np.isfinite(d)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if not ok.any():
        return 0.0
    return float(np.median(d[ok]))


def flag_cr(sci, err, blot, snr=(5.0, 4.0), scale=(1.2, 0.7), backg=0.0, *, deriv_noise_floor=True):
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
    deriv_noise_floor : bool
        Subtract in quadrature the blotted median's noise-only derivative
        (:func:`derivative_noise_floor`) from ``deriv`` (see the module docstring); False: jwst.

    Returns
    -------
    numpy.ndarray of bool
        True for outliers. NaN science or blot pixels are never flagged.
    """
    snr1, snr2 = snr
    scale1, scale2 = scale
    err = np.nan_to_num(np.asarray(err, dtype=np.float64))
    deriv = abs_deriv(blot)
    if deriv_noise_floor:
        floor = derivative_noise_floor(deriv, np.isfinite(np.asarray(blot, dtype=np.float64)))
        deriv = np.sqrt(np.clip(deriv * deriv - floor * floor, 0.0, None))
    diff = np.abs(np.asarray(sci, dtype=np.float64) - (np.asarray(blot, dtype=np.float64) + backg))
    with np.errstate(invalid="ignore"):
        mask1 = diff > scale1 * deriv + snr1 * err
        mask2 = diff > scale2 * deriv + snr2 * err
    grown = ndimage.convolve(mask1.astype(np.uint8), np.ones((3, 3), np.uint8), mode="nearest") > 0
    return grown & mask2
