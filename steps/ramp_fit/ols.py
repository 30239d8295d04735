"""Ordinary-least-squares ramp fitting with "optimal" weighting (Fixsen et al. 2000).

Plain arrays in, arrays out. The algorithm is the reference pipeline's (stcal 1.20 ``OLS_C``):

* a ramp of one integration is split into *segments*: maximal runs of groups with no group DQ
  flag (PERSISTENCE ignored); a group flagged exactly JUMP_DET is the first read of the segment
  that follows it; length-1 segments are dropped when a longer one exists;
* every segment of >= 3 groups gets a weighted least-squares slope whose weights
  ``|(i - m)/m|**P`` depend on the segment signal-to-noise ratio through the exponent table
  (S/N < 5: 0, < 10: 0.4, < 20: 1, < 50: 3, < 100: 6, else 10);
* 2-group segments use the difference, 1-group segments the value divided by the group time;
* segments of one integration, then all integrations, are combined with inverse read-noise
  variance weights (stcal >= 1.19, JP-4318); ERR of one integration is the inverse-variance sum
  of the segments' total variances; ERR of the exposure is sqrt(VAR_POISSON + VAR_RNOISE);
* variances >= 1e6 (DN/s)^2 are set to 0.

Deliberate differences from the reference
------------------------------------------
* ``poisson_variance='propagated'`` (default): for ramps split into several segments (jumps,
  DO_NOT_USE groups), VAR_POISSON is the Poisson variance of the read-noise-weighted mean the
  slope really is, ``sum w_s^2 var_P,s`` with ``w_s = (1/var_R,s) / sum 1/var_R``, and the
  per-integration ERR is sqrt(VAR_POISSON + VAR_RNOISE). The reference's ``1/sum(1/var_P,s)``
  assumes Poisson weights it does not use and underestimates ERR of bright split ramps (robust
  pull sigma ~1.15 with 5 integrations and 20 % CR hits). Slopes, VAR_RNOISE and DQ are
  unchanged; ``'reference'`` reproduces stcal bit for bit.
* Frame-averaged groups (NFRAMES > 1: BRIGHT2, SHALLOW4, MEDIUM8, ...), with
  ``poisson_variance='propagated'``: a group is the mean of its frames, so its Poisson variance is
  ``lambda (t - c)``, ``c = tframe (nframes**2 - 1) / (6 nframes)``, while its covariance with
  later groups is ``lambda t`` (group gaps only lengthen ``tgroup``). A slope ``sum a_k g_k``
  therefore has Poisson variance ``lambda (tgroup sum_{i>=1} A_i**2 - c sum a_k**2)``
  (``A_i = sum_{k>=i} a_k``); the reference uses ``lambda / (tgroup (n - 1))``, exact for
  end-point weights of single-frame groups only. Each segment's Poisson variance is multiplied by the exact
  relative fall ``1 - c sum a**2 / (tgroup sum A**2)`` for the weights used: ``1 - 2c/((n-1)
  tgroup)`` for end-point weights and 2-group differences, ``1 - c/t`` for one group. The
  reference overestimates ERR, most for short segments. Single-frame (RAPID) data are
  unchanged (``c = 0``). Robust std of pulls, 1 / 5 integrations, before -> after (tests'
  generator, gain 2, CDS noise 12 DN, tgroup 10 s; "saturating": 2-4 unsaturated groups):
  BRIGHT2 (6 groups) near-saturation 0.972 / 0.966 -> 0.997 / 0.991, saturating
  0.919 / 0.910 -> 1.027 / 1.016; SHALLOW4 (8 groups) saturating 0.898 / 0.907 -> 1.000 / 1.016;
  MEDIUM8 (10 groups) saturating 0.892 / 0.892 -> 0.997 / 1.002 (medians unchanged, within
  +-0.04). Full detector1 on the simulated NIRCam BRIGHT2 case (tests/test_detector1_truth.py):
  bright / near-saturation / saturating 0.93 / 0.92 / 0.90 -> 1.011 / 1.005 / 1.009.
* ``weighting='optimal'`` (default): the optimal-weighting exponent P of a segment of n groups
  is chosen from the S/N *expected* from the pixel's robust rate ``mu`` (the median
  first-difference rate averaged over integrations, already used for the Poisson variance):
  ``D = mu (n - 1) tgroup`` in place of the segment's own last-minus-first difference. The
  reference's data-driven choice correlates the weights with the noise (an upward fluctuation
  raises P, which makes the slope follow the end points more closely), biasing rates upward
  near the S/N steps, increasingly with the number of integrations. Median pull at the steps
  (8 groups, RAPID, 90,000 pixels each), before -> after: S/N 5 / 10 / 20 / 50 / 100:
  1 integration +0.032 / +0.041 / +0.060 / +0.024 / +0.011 -> +0.010 / +0.016 / +0.006 /
  -0.007 / -0.001; 20 integrations +0.087 / +0.085 / +0.140 / +0.028 / +0.004 -> +0.006 /
  +0.004 / +0.015 / +0.000 / +0.001 (robust std unchanged, 1.01-1.05).
  ``weighting='optimal_stcal'`` keeps the reference's choice. stcal 1.20 bit for bit:
  ``poisson_variance='reference', weighting='optimal_stcal'``.
* A pixel whose read noise is NaN or infinite gets DO_NOT_USE (the reference returns NaN slopes
  without a flag).
* ZEROFRAME substitution is not implemented (jwst ``use_zeroframe`` / MIRI dropped frames).
* CHARGELOSS read-noise recomputation is not implemented.

All per-pixel work is one numba kernel (``nogil``) run on blocks of image rows by a thread pool;
every pixel is computed on its own, so the result is bit-identical for any number of threads.
(Plain ``njit`` kernels compile several times faster than ``parallel=True`` ones.)
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["RampProducts", "RampFitResult", "fit_ramps", "resolve_cores", "frame_averaging_constant"]

DO_NOT_USE = 1
SATURATED = 2
JUMP_DET = 4
PERSISTENCE = 32
NO_GAIN_VALUE = 1 << 19
LARGE_VARIANCE_THRESHOLD = 1.0e6


@dataclass
class RampProducts:
    """Slopes and their uncertainties (2-D for ``rate``, 3-D (nints, ny, nx) for ``rateints``).

    Attributes
    ----------
    data : ndarray of float32
        Count rate, DN/s (SCI).
    err : ndarray of float32
        Total uncertainty of the rate, DN/s (ERR).
    dq : ndarray of uint32
        Data quality (DQ).
    var_poisson : ndarray of float32
        Poisson variance of the rate, (DN/s)^2 (VAR_POISSON).
    var_rnoise : ndarray of float32
        Read-noise variance of the rate, (DN/s)^2 (VAR_RNOISE).
    """

    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray


@dataclass
class RampFitResult:
    """Result of :func:`fit_ramps`: ``rate`` (exposure) and ``rateints`` (per integration)."""

    rate: RampProducts
    rateints: RampProducts


def resolve_cores(maximum_cores):
    """Number of threads for ``maximum_cores`` as jwst users write it.

    Parameters
    ----------
    maximum_cores : int or str
        A positive integer, or ``'none'`` (1), ``'quarter'``, ``'half'``, ``'all'`` of the CPU
        cores; a string holding an integer is accepted.

    Returns
    -------
    int
        Threads to use, at least 1 and at most the number of CPU cores.
    """
    ncpu = os.cpu_count() or 1
    if maximum_cores is None:
        n = 1
    elif isinstance(maximum_cores, str):
        key = maximum_cores.strip().lower()
        table = {"none": 1, "1": 1, "quarter": ncpu // 4, "half": ncpu // 2, "all": ncpu}
        if key in table:
            n = table[key]
        else:
            try:
                n = int(key)
            except ValueError:
                raise ValueError(
                    f"maximum_cores must be an integer, 'none', 'quarter', 'half' or 'all', not {maximum_cores!r}"
                ) from None
    else:
        n = int(maximum_cores)
    return int(max(1, min(n, ncpu)))


def run_rows(kernel, ny, nthreads, *args):
    """Call ``kernel(y0, y1, *args)`` over row blocks covering ``range(ny)``, on ``nthreads`` threads.

    The kernel must release the GIL (``nogil=True``) and write only rows ``y0:y1`` of its outputs.
    """
    if nthreads <= 1 or ny < 2:
        kernel(0, ny, *args)
        return
    nblocks = min(ny, 8 * nthreads)
    edges = np.linspace(0, ny, nblocks + 1).astype(int)
    with ThreadPoolExecutor(max_workers=nthreads) as pool:
        futures = [pool.submit(kernel, int(a), int(b), *args) for a, b in zip(edges[:-1], edges[1:]) if b > a]
        for f in futures:
            f.result()


#: optimal-weighting exponents and the S/N at which each starts (Fixsen et al. 2000)
SNR_TABLE = (0.0, 5.0, 10.0, 20.0, 50.0, 100.0)
POWER_TABLE = (0.0, 0.4, 1.0, 3.0, 6.0, 10.0)


@njit(cache=True, nogil=True, error_model="numpy")
def _snr_power_index(snr):
    if snr < 5.0:
        return 0
    if snr < 10.0:
        return 1
    if snr < 20.0:
        return 2
    if snr < 50.0:
        return 3
    if snr < 100.0:
        return 4
    return 5


def _weight_table(ngroups):
    """``|(k - m)/m| ** P`` for every exponent P, segment length n and group k (float32 pow, as the reference)."""
    tab = np.zeros((len(POWER_TABLE), ngroups + 1, max(ngroups, 1)), np.float64)
    for n in range(3, ngroups + 1):
        mid = (n - 1) / 2.0
        base = np.abs((np.arange(n, dtype=np.float64) - mid) * (1.0 / mid)).astype(np.float32)
        for p, power in enumerate(POWER_TABLE):
            tab[p, n, :n] = (base ** np.float32(power)).astype(np.float64)
    return tab


def frame_averaging_constant(tframe, nframes):
    """``c = tframe (nframes**2 - 1) / (6 nframes)``, s: how much a group's Poisson variance falls short.

    A group averaging ``nframes`` frames read ``tframe`` apart, of mean read time ``t``, has
    Poisson variance ``lambda (t - c)`` (electrons, rate ``lambda``) while its covariance with any
    later group is ``lambda t``; so a group difference has ``lambda (tgroup - 2 c)``, not
    ``lambda tgroup``. 0 for single-frame groups. Group gaps change only ``tgroup``.
    """
    nframes = int(nframes)
    if nframes <= 1:
        return 0.0
    return float(tframe) * (nframes * nframes - 1.0) / (6.0 * nframes)


def _frame_averaging_table(wtab, ngroups, c, tgroup):
    """Relative fall of the Poisson variance of each weighted slope from frame averaging.

    For a slope ``sum_k a_k g_k`` (``sum a_k = 0``, ``sum a_k t_k = 1``, group times ``t_k``
    ``tgroup`` apart) of groups with covariance ``lambda (min(t_k, t_l) - c delta_kl)`` the Poisson
    variance is ``lambda (tgroup sum_{i>=1} A_i**2 - c sum_k a_k**2)`` with ``A_i = sum_{k>=i} a_k``.
    ``out[p, n] = c sum a**2 / (tgroup sum A**2)`` for the weights ``wtab[p, n]`` (exponent ``p``,
    ``n`` groups); the reference's Poisson variance of such a segment is multiplied by
    ``1 - out[p, n]``. For endpoint weights (large exponents) this is ``2 c / ((n - 1) tgroup)``.
    """
    out = np.zeros(wtab.shape[:2], np.float64)
    if c <= 0.0:
        return out
    x = np.arange(max(ngroups, 1), dtype=np.float64)
    for p in range(wtab.shape[0]):
        for n in range(3, ngroups + 1):
            w = wtab[p, n, :n]
            xm = np.sum(w * x[:n]) / np.sum(w)
            a = w * (x[:n] - xm)
            a /= np.sum(a * x[:n])                      # slope per group index
            big_a = np.cumsum(a[::-1])[::-1][1:]        # A_i, i = 1 .. n-1
            out[p, n] = c * np.sum(a * a) / (tgroup * np.sum(big_a * big_a))
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def median_inplace(a, n):
    """Median of ``a[:n]`` (no NaN inside), reordering ``a[:n]`` (quickselect).

    Gives exactly ``np.median(a[:n])``: the middle value, or the mean of the two middle values.
    Short arrays (n <= 16) are insertion-sorted instead.
    """
    k = n // 2
    if n <= 16:
        for i in range(1, n):
            v = a[i]
            j = i - 1
            while j >= 0 and a[j] > v:
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = v
        if n % 2 == 1:
            return a[k]
        return (a[k - 1] + a[k]) / 2.0
    lo = 0
    hi = n - 1
    while hi > lo:
        pivot = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    v = a[k]
    if n % 2 == 1:
        return v
    m = a[0]
    for t in range(1, k):
        if a[t] > m:
            m = a[t]
    return (m + v) / 2.0


@njit(cache=True, nogil=True, error_model="numpy")
def _fit_kernel(y0, y1, data, gdq, pixeldq, gain2d, rn2d, dark2d, tgroup, one_group_time, suppress1g, wtab, propagated,
                robust_power, cfr, ftab, r_sci, r_err, r_dq, r_vp, r_vr, i_sci, i_err, i_dq, i_vp, i_vr):
    nints, ngroups, ny, nx = data.shape
    npers = np.uint8(0xFF ^ PERSISTENCE)
    for y in range(y0, y1):
        d = np.empty((nints, ngroups), dtype=np.float64)
        q = np.empty((nints, ngroups), dtype=np.uint8)
        seg_s = np.empty(ngroups + 1, dtype=np.int64)
        seg_e = np.empty(ngroups + 1, dtype=np.int64)
        buf = np.empty(max(ngroups, 1), dtype=np.float64)
        is0th = np.zeros(nints, dtype=np.bool_)
        cnt_sat = np.zeros(nints, dtype=np.int64)
        cnt_dnusat = np.zeros(nints, dtype=np.int64)
        idq = np.zeros(nints, dtype=np.uint32)
        for x in range(nx):
            g = np.float64(gain2d[y, x])
            rn = np.float64(rn2d[y, x])
            dark = np.float64(dark2d[y, x])
            pdq = np.uint32(pixeldq[y, x])
            if not (g > 0.0):
                pdq |= np.uint32(DO_NOT_USE | NO_GAIN_VALUE)
            if not np.isfinite(rn):
                pdq |= np.uint32(DO_NOT_USE)
            rdq = pdq
            # ---- load the ramp and per-integration statistics
            for i in range(nints):
                idq[i] = pdq
                if suppress1g:
                    ngood = 0
                    for k in range(ngroups):
                        if (gdq[i, k, y, x] & npers) == 0:
                            ngood += 1
                    supp = ngood == 1
                else:
                    supp = False
                cgood = 0
                csat = 0
                cds = 0
                jump = False
                pers = False
                for k in range(ngroups):
                    f = gdq[i, k, y, x]
                    if supp:
                        f |= np.uint8(DO_NOT_USE)
                    q[i, k] = f
                    if f & JUMP_DET:
                        jump = True
                    if f & PERSISTENCE:
                        pers = True
                    if f == 0:
                        cgood += 1
                    if f & (DO_NOT_USE | SATURATED):
                        cds += 1
                    if f & SATURATED:
                        d[i, k] = np.nan
                        csat += 1
                    else:
                        d[i, k] = np.float64(data[i, k, y, x])
                cnt_sat[i] = csat
                cnt_dnusat[i] = cds
                is0th[i] = (not suppress1g) and cgood == 1 and q[i, 0] == 0
                if jump:
                    idq[i] |= np.uint32(JUMP_DET)
                    rdq |= np.uint32(JUMP_DET)
                if pers:
                    idq[i] |= np.uint32(PERSISTENCE)
                    rdq |= np.uint32(PERSISTENCE)
            # ---- median rate (DN/s), only used for the Poisson variance
            acc = 0.0
            if ngroups == 1:
                for i in range(nints):
                    acc += d[i, 0] / one_group_time
                med = acc / nints
            else:
                for i in range(nints):
                    if is0th[i]:
                        m = d[i, 0] / one_group_time
                    else:
                        nv = 0
                        prev = np.nan if (q[i, 0] & DO_NOT_USE) else d[i, 0] / tgroup
                        loc0 = prev
                        for k in range(ngroups - 1):
                            cur = np.nan if (q[i, k + 1] & DO_NOT_USE) else d[i, k + 1] / tgroup
                            if not (q[i, k + 1] & JUMP_DET):
                                diff = cur - prev
                                if not np.isnan(diff):
                                    buf[nv] = diff
                                    nv += 1
                            prev = cur
                        if nv == 0:
                            m = loc0  # the reference's quirk: NaN unless group 0 is usable
                        else:
                            m = median_inplace(buf, nv)
                    if np.isnan(m):
                        m = 0.0
                    acc += m
                med = acc / nints
            if np.isnan(med):
                med = 0.0
            # ---- per integration
            rate_invp = 0.0
            rate_sp2 = 0.0
            rate_nseg = 0
            rate_invr = 0.0
            rate_num = 0.0
            dnu_cnt = 0
            sat_cnt = 0
            rate_sat = False
            for i in range(nints):
                s_i = 0.0
                vp_i = 0.0
                vr_i = 0.0
                e_i = 0.0
                fit = True
                if q[i, 0] & SATURATED:
                    idq[i] |= np.uint32(DO_NOT_USE | SATURATED)
                    fit = False
                if cnt_dnusat[i] == ngroups:
                    idq[i] |= np.uint32(DO_NOT_USE)
                    if cnt_sat[i] == ngroups:
                        idq[i] |= np.uint32(SATURATED)
                    fit = False
                if fit:
                    # segments
                    nseg = 0
                    maxlen = 0
                    in_seg = False
                    start = 0
                    for k in range(ngroups):
                        f = q[i, k] & npers
                        if f == 0:
                            if not in_seg:
                                if k > 0 and (q[i, k - 1] & npers) == JUMP_DET:
                                    start = k - 1
                                else:
                                    start = k
                                in_seg = True
                        elif in_seg:
                            seg_s[nseg] = start
                            seg_e[nseg] = k
                            maxlen = max(maxlen, k - start)
                            nseg += 1
                            in_seg = False
                    if in_seg:
                        seg_s[nseg] = start
                        seg_e[nseg] = ngroups
                        maxlen = max(maxlen, ngroups - start)
                        nseg += 1
                    if nseg >= 2:
                        if maxlen < 2:
                            nseg = 1
                        else:
                            j = 0
                            for s in range(nseg):
                                if seg_e[s] - seg_s[s] > 1:
                                    seg_s[j] = seg_s[s]
                                    seg_e[j] = seg_e[s]
                                    j += 1
                            nseg = j
                    if nseg > 0:
                        invr = 0.0
                        invp = 0.0
                        inve = 0.0
                        sp2 = 0.0
                        num = 0.0
                        for s in range(nseg):
                            a = seg_s[s]
                            n = seg_e[s] - a
                            if n == 1:
                                timing = one_group_time if ((not suppress1g) and is0th[i]) else tgroup
                                slope = d[i, a] / timing
                                pden = timing * g
                                fav = cfr / timing
                                t = rn / timing
                                var_r = 12.0 * t * t / (6.0 * g * g)
                            elif n == 2:
                                slope = (d[i, a + 1] - d[i, a]) / tgroup
                                pden = tgroup * g
                                fav = 2.0 * cfr / tgroup
                                t = rn / tgroup
                                var_r = 12.0 * t * t / (6.0 * g * g)
                            else:
                                if robust_power:
                                    # expected signal of the segment from the robust rate, not
                                    # from its own (noisy) end points
                                    diff = med * (n - 1.0) * tgroup
                                else:
                                    diff = d[i, a + n - 1] - d[i, a]
                                den = rn * rn + diff * g
                                if den <= 0.0 or g == 0.0:
                                    snr = 0.0
                                else:
                                    snr = diff * g / np.sqrt(den)
                                    if snr < 0.0:
                                        snr = 0.0
                                p = _snr_power_index(snr)
                                invrn2 = 1.0 / (rn * rn)
                                sw = 0.0
                                sx = 0.0
                                sxx = 0.0
                                sy = 0.0
                                sxy = 0.0
                                for k in range(n):
                                    w = wtab[p, n, k] * invrn2
                                    xv = np.float64(k + a)
                                    dv = d[i, a + k]
                                    if np.isnan(dv):
                                        dv = 0.0
                                    xw = xv * w
                                    sw += w
                                    sx += xw
                                    sxx += xv * xw
                                    sy += dv * w
                                    sxy += dv * xw
                                den = sw * sxx - sx * sx
                                nm = sw * sxy - sx * sy
                                slope = nm * (1.0 / den) / tgroup
                                pden = tgroup * g * (n - 1.0)
                                fav = ftab[p, n]
                                if g <= 0.0 or np.isnan(g):
                                    var_r = 0.0
                                else:
                                    t = rn / tgroup
                                    var_r = 12.0 * t * t / ((n * n * n - n) * g * g)
                            if med > 0.0:
                                var_p = (med + dark) / pden
                            else:
                                var_p = dark / pden
                            if cfr > 0.0:
                                var_p *= 1.0 - fav
                            var_e = var_p + var_r
                            invr += 1.0 / var_r
                            if var_p > 0.0:
                                invp += 1.0 / var_p
                            inve += 1.0 / var_e
                            sp2 += var_p / (var_r * var_r)
                            num += slope / var_r
                        if propagated and nseg > 1:
                            # Poisson variance of the read-noise-weighted mean actually used
                            vp_i = sp2 / (invr * invr)
                        elif invp > 0.0:
                            vp_i = 1.0 / invp
                        if vp_i >= LARGE_VARIANCE_THRESHOLD:
                            vp_i = 0.0
                        vr_i = 1.0 / invr
                        if vr_i >= LARGE_VARIANCE_THRESHOLD:
                            vr_i = 0.0
                        if idq[i] & (DO_NOT_USE | SATURATED):
                            s_i = np.nan
                            vp_i = 0.0
                            vr_i = 0.0
                            e_i = 0.0
                        else:
                            ve = 1.0 / inve
                            if propagated and nseg > 1:
                                ve = vp_i + vr_i
                            s_i = num * vr_i
                            if ve > LARGE_VARIANCE_THRESHOLD:
                                e_i = 0.0
                            else:
                                e_i = np.sqrt(ve)
                        if invp > 0.0:
                            rate_invp += invp
                        rate_invr += invr
                        rate_num += num
                        rate_sp2 += sp2
                        rate_nseg += nseg
                if idq[i] & DO_NOT_USE:
                    dnu_cnt += 1
                    s_i = np.nan
                if idq[i] & SATURATED:
                    sat_cnt += 1
                    s_i = np.nan
                if cnt_sat[i] > 0:
                    idq[i] |= np.uint32(SATURATED)
                    rate_sat = True
                i_sci[i, y, x] = np.float32(s_i)
                i_err[i, y, x] = np.float32(e_i)
                i_vp[i, y, x] = np.float32(vp_i)
                i_vr[i, y, x] = np.float32(vr_i)
                i_dq[i, y, x] = idq[i]
            # ---- exposure
            if dnu_cnt == nints:
                rdq |= np.uint32(DO_NOT_USE)
            if sat_cnt == nints:
                rdq |= np.uint32(SATURATED)
            vp = rate_invp
            if propagated and rate_nseg > 1:
                vp = rate_sp2 / (rate_invr * rate_invr)
            elif vp > 0.0:
                vp = 1.0 / vp
            if vp >= LARGE_VARIANCE_THRESHOLD or vp < 0.0:
                vp = 0.0
            vr = rate_invr
            if vr > 0.0:
                vr = 1.0 / vr
            if vr >= LARGE_VARIANCE_THRESHOLD:
                vr = 0.0
            err = np.sqrt(vp + vr)
            slope = rate_num
            if rdq & (DO_NOT_USE | SATURATED):
                slope = np.nan
                vp = 0.0
                vr = 0.0
                err = 0.0
            if rate_sat:
                rdq |= np.uint32(SATURATED)
            if not np.isnan(slope):
                slope = slope * vr
            r_sci[y, x] = np.float32(slope)
            r_err[y, x] = np.float32(err)
            r_vp[y, x] = np.float32(vp)
            r_vr[y, x] = np.float32(vr)
            r_dq[y, x] = rdq


def fit_ramps(data, groupdq, pixeldq, gain, readnoise, *, tgroup, tframe, nframes, groupgap=0,
              drop_frames1=0, weighting="optimal", suppress_one_group=True, maximum_cores=1,
              dark_current=None, poisson_variance="propagated"):
    """Fit count rates to up-the-ramp data (OLS, optimal weighting).

    Parameters
    ----------
    data : ndarray, float32, shape (nints, ngroups, ny, nx)
        Ramp data, DN.
    groupdq : ndarray, uint8, same shape
        Group DQ (DO_NOT_USE, SATURATED, JUMP_DET ... are honoured; PERSISTENCE is ignored).
    pixeldq : ndarray, uint32, shape (ny, nx)
        Pixel DQ, copied into the output DQ.
    gain : ndarray, shape (ny, nx)
        Gain, e/DN. Values <= 0 or NaN give DO_NOT_USE | NO_GAIN_VALUE.
    readnoise : ndarray, shape (ny, nx)
        CDS read noise, DN. NaN gives DO_NOT_USE.
    tgroup, tframe : float
        Group and frame times, s.
    nframes : int
        Frames averaged per group.
    groupgap, drop_frames1 : int
        Accepted for the reference's signature (they enter neither the slope nor the variances:
        ``tgroup`` already holds the group gap).
    weighting : {'optimal', 'optimal_stcal'}
        Fixsen et al. (2000) "optimal" weights ``|(k - m)/m|**P`` with the exponent ``P`` chosen by
        segment signal-to-noise ratio. 'optimal' (default): the S/N is that *expected* for the
        segment from the pixel's robust rate (the median first-difference rate averaged over
        integrations, as the Poisson variance uses), so the choice does not follow the segment's
        own noise; 'optimal_stcal': the S/N of the segment's own last-minus-first difference, as
        stcal, which biases slopes upward near the S/N steps (see the module notes).
    suppress_one_group : bool
        When True, an integration with exactly one good group is not fitted (NaN, DO_NOT_USE).
        Ignored when ngroups == 1.
    maximum_cores : int or {'none', 'quarter', 'half', 'all'}
        Threads to use; results are bit-identical for any value.
    dark_current : ndarray, shape (ny, nx), optional
        Average dark current, DN/s, added to the median rate in the Poisson variance.
    poisson_variance : {'propagated', 'reference'}
        How VAR_POISSON (and the per-integration ERR) of ramps with more than one segment are
        computed. The slope combines segments with inverse *read-noise* variance weights
        ``w_s`` (as the reference). 'propagated' (default) gives the Poisson variance of that
        weighted mean, ``sum w_s^2 var_P,s``, and ERR_int = sqrt(VAR_POISSON + VAR_RNOISE);
        'reference' gives stcal's ``1 / sum(1 / var_P,s)`` and ERR_int = sqrt(1 / sum 1/(var_P,s
        + var_R,s)), which underestimate the error of bright ramps split by jumps (slope
        pulls with a robust sigma ~1.15 in tests). 'propagated' also gives the Poisson variance of
        groups that average ``nframes > 1`` frames (see the module notes); 'reference' ignores
        the averaging, as stcal. Single-frame ramps of one segment are identical.

    Returns
    -------
    RampFitResult
        ``rate`` (2-D) and ``rateints`` (3-D) products. Unusable pixels/integrations are NaN
        with DO_NOT_USE (integrations saturated in group 0 also SATURATED) and zero variances.

    Notes
    -----
    Special cases (same as the reference):

    * all groups saturated, or group 0 saturated: that integration is NaN, DO_NOT_USE|SATURATED;
      if every integration is, the rate is too;
    * partially saturated ramps are fitted with their unsaturated groups and carry SATURATED;
    * ngroups == 1: slope = data / ((nframes + 1) * tframe / 2);
    * ngroups == 2: slope = (d1 - d0) / tgroup, var_rnoise = 2 rn^2 / tgroup^2 (DN, per group);
    * one good group with ``suppress_one_group``: NaN, DO_NOT_USE; without: data / t with
      t = (nframes + 1) * tframe / 2 when that group is group 0, else tgroup.
    """
    if poisson_variance not in ("propagated", "reference"):
        raise ValueError("poisson_variance must be 'propagated' or 'reference'")
    if weighting not in ("optimal", "optimal_stcal"):
        raise ValueError("weighting must be 'optimal' or 'optimal_stcal'")
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"data must be 4-D (nints, ngroups, ny, nx), got shape {data.shape}")
    nints, ngroups, ny, nx = data.shape
    data = np.ascontiguousarray(data, dtype=np.float32)
    groupdq = np.ascontiguousarray(groupdq, dtype=np.uint8)
    if groupdq.shape != data.shape:
        raise ValueError("groupdq must have the shape of data")
    pixeldq = np.array(np.broadcast_to(pixeldq, (ny, nx)), dtype=np.uint32, order='C')
    gain32 = np.array(np.broadcast_to(gain, (ny, nx)), dtype=np.float32, order='C')
    rn32 = np.array(np.broadcast_to(readnoise, (ny, nx)), dtype=np.float32, order='C')
    # per-group read noise in electrons, rounded to float32 as the reference does
    with np.errstate(invalid="ignore", over="ignore"):
        rn_e = (rn32 * (gain32.astype(np.float64) / np.sqrt(2.0 * nframes))).astype(np.float32)
    if dark_current is None:
        dark = np.zeros((ny, nx), dtype=np.float32)
    else:
        dark = np.array(np.broadcast_to(dark_current, (ny, nx)), dtype=np.float32, order='C')
    # the reference passes times through C floats
    tg = float(np.float32(tgroup))
    tf = float(np.float32(tframe))
    one_group_time = (float(nframes) + 1.0) * tf / 2.0
    suppress1g = bool(suppress_one_group) and ngroups > 1
    propagated = poisson_variance == "propagated"
    wtab = _weight_table(ngroups)
    cfr = frame_averaging_constant(tf, nframes) if propagated else 0.0
    ftab = _frame_averaging_table(wtab, ngroups, cfr, tg)

    r_sci = np.empty((ny, nx), np.float32)
    r_err = np.empty((ny, nx), np.float32)
    r_dq = np.empty((ny, nx), np.uint32)
    r_vp = np.empty((ny, nx), np.float32)
    r_vr = np.empty((ny, nx), np.float32)
    i_sci = np.empty((nints, ny, nx), np.float32)
    i_err = np.empty((nints, ny, nx), np.float32)
    i_dq = np.empty((nints, ny, nx), np.uint32)
    i_vp = np.empty((nints, ny, nx), np.float32)
    i_vr = np.empty((nints, ny, nx), np.float32)
    run_rows(_fit_kernel, ny, resolve_cores(maximum_cores),
             data, groupdq, pixeldq, gain32, rn_e, dark, tg, one_group_time, suppress1g,
             wtab, propagated, weighting == "optimal", cfr, ftab,
             r_sci, r_err, r_dq, r_vp, r_vr, i_sci, i_err, i_dq, i_vp, i_vr)
    return RampFitResult(
        rate=RampProducts(r_sci, r_err, r_dq, r_vp, r_vr),
        rateints=RampProducts(i_sci, i_err, i_dq, i_vp, i_vr),
    )
