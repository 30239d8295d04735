"""Jump (cosmic-ray) detection with the two-point difference method (Anderson & Gordon 2011).

Plain arrays in, a new group DQ out. The algorithm is the reference pipeline's (stcal 1.20
``twopoint_difference``), working in electrons on first differences of usable groups:

* ``M`` = median of all usable differences of the pixel (all integrations), noise
  ``sigma = sqrt(|M| + (rn_CDS * gain)**2 / nframes)``;
* mode, chosen for the whole exposure as the reference does:

  - sigma clipping of each difference across integrations (astropy ``sigma_clip`` with
    ``sigma=rejection_threshold``, 5 iterations, median/std) when ``nints >=
    minimum_sigclip_groups`` (``only_use_ints``; otherwise clipping over all differences when
    the usable group count reaches it);
  - single pass ``|delta - M| / sigma > rejection_threshold`` when every integration keeps at
    least ``min_diffs_single_pass`` (10) usable differences;
  - otherwise iterative: clipped median of ``|delta|`` (the largest dropped when >= 4 remain),
    the largest ratio flagged when above the threshold for the count (>= 4 differences:
    ``rejection_threshold``; 3: ``four_group_rejection_threshold``; 2:
    ``three_group_rejection_threshold``), removed, repeated;
* JUMP_DET goes on the later group of the difference;
* the 4 neighbours of jumps whose ``|delta - M| / sigma`` lies strictly between
  ``min_jump_to_flag_neighbors`` and ``max_jump_to_flag_neighbors`` are flagged in that group
  (unless SATURATED or DO_NOT_USE there);
* optional after-jump flagging of the next ``int(after_jump_flag_time / tgroup)`` groups for
  jumps of at least ``after_jump_flag_dn * median(gain)`` electrons;
* JUMP_DET is finally removed from groups that are also DO_NOT_USE or SATURATED.

Split hits in multi-frame groups (``flag_split_jumps``, default on; ``nframes > 1``)
-------------------------------------------------------------------------------------
A group averages ``nframes`` frames. A cosmic ray of charge ``C`` arriving before frame ``j``
(``0 < j < nframes``) of group ``k`` adds ``(nframes - j) / nframes * C`` to difference ``k-1 ->
k`` and ``j / nframes * C`` to ``k -> k+1`` (half and half for 2-frame groups); only the
two-group difference ``G[k+1] - G[k-1]`` holds all of it. With few differences this defeats the
reference's search: two contaminated differences out of three make the median contaminated,
the clean difference is flagged instead and the hit is missed. So, for ``nframes > 1``:

* iterative mode: before each search for the single largest outlier, every pair of
  consecutive remaining differences ``(a, b)`` of an integration is tested: baseline ``B`` =
  median of the other ``m`` remaining differences (signed), ``E = d_a + d_b - 2B`` against its
  standard deviation ``sqrt(2P + N + 4c (P + 1.5 N))`` (``P = |B|`` electrons, ``N`` the
  read-noise variance of one difference, ``c`` the variance factor of a median of ``m`` values,
  ``1.5 N`` including the covariance through shared group reads); the most significant pair with
  ``E / sd > rejection_threshold`` is flagged and removed, then the search goes on;
* single-pass mode: pairs of consecutive unflagged differences, with ``B = M``, most
  significant first;
* a pair is only taken when it looks like one split hit: both parts exceed ``B`` by 2 standard
  deviations of ``d - B``, and the smaller part is at least ``0.5 / (nframes - 1)`` times the
  larger one (the frame-sampling limit ``1 / (nframes - 1)``, halved because the linearity
  correction of frames averaged across a large jump leaves the halves unequal) within 3
  standard deviations, so a single hit next to a clean difference is not taken as a pair;
* both groups of a pair (``k`` and ``k+1``) get JUMP_DET: group ``k`` holds part of the
  charge, so the next ramp segment starts at ``k+1``;
* finally, when only one part of a split hit passed the single-difference test, the
  unflagged neighbour of a flagged difference is flagged too if the pair passes the same
  test (baseline: median of the other unflagged differences).

The pair test is one-sided and calibrated with the baseline's own uncertainty: on clean
simulated 2- and 4-frame ramps (4 to 20 groups) it adds at most 5e-5 flags per pixel-group to
the reference's 2e-5 .. 5e-4. It is not applied in sigma-clipping mode. A hit whose charge
lies in every usable difference (e.g. 3 usable groups and a hit in the second frame of the
middle group) leaves a straight ramp and cannot be found by any method.

Deliberate differences from the reference
------------------------------------------
* ``flag_split_jumps`` above (only for ``nframes > 1``).
* SATURATED groups are excluded even when DO_NOT_USE is not set with them (the reference only
  excludes DO_NOT_USE groups from the differences).
* Pixels with gain <= 0 or NaN are left as they are (the reference runs them through).
* The image is processed whole (no slicing), so the result does not depend on the core count.

The per-pixel work runs in numba kernels (``nogil``) on blocks of image rows in a thread pool;
bit-identical for any thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from steps.ramp_fit.ols import resolve_cores, run_rows

__all__ = ["detect_jumps"]

DO_NOT_USE = 1
SATURATED = 2
JUMP_DET = 4

MODE_SINGLE, MODE_ITERATIVE, MODE_SIGCLIP = 0, 1, 2


@njit(cache=True, nogil=True, error_model="numpy")
def median_inplace(a, n):
    """(A copy of ``steps.ramp_fit.ols.median_inplace``: numba's cache does not track
    functions of other files.) Median of ``a[:n]`` (no NaN inside), reordering ``a[:n]`` (quickselect).

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
    v = _select_inplace(a, n, k)
    if n % 2 == 1:
        return v
    m = a[0]
    for t in range(1, k):
        if a[t] > m:
            m = a[t]
    return (m + v) / 2.0


#: variance of the median of m independent unit-variance Gaussian values (numpy's median: the
#: mean of the two middle values for even m), m = 1..12 (Monte Carlo, 4e5 draws each);
#: ``pi / (2 m)`` beyond
MEDIAN_VARIANCE = np.array([1.0, 0.5, 0.448, 0.300, 0.286, 0.215, 0.210, 0.168, 0.166, 0.138,
                            0.138, 0.117])
#: split hits: each part must exceed its baseline by SPLIT_POSITIVE_SIGMA standard deviations,
#: and the smaller part ``e_min`` must reach ``(1 - SPLIT_RATIO_TOLERANCE) e_max / (nframes - 1)``
#: (the smallest ratio frame sampling allows, loosened for the non-linearity of averaged frames
#: across a large jump) within SPLIT_RATIO_SIGMA standard deviations
SPLIT_POSITIVE_SIGMA = 2.0
SPLIT_RATIO_TOLERANCE = 0.5
SPLIT_RATIO_SIGMA = 3.0


@njit(cache=True, nogil=True, error_model="numpy")
def _median_variance(m, ctab):
    """Variance of a median of ``m`` values in units of one value's variance (``MEDIAN_VARIANCE``)."""
    if m <= ctab.size:
        return ctab[m - 1]
    return np.pi / (2.0 * m)


@njit(cache=True, nogil=True, error_model="numpy")
def _split_z(da, db, base, m, noise_var, nframes, ctab):
    """Significance of a cosmic ray split over two consecutive differences, or -1.

    A hit arriving before frame ``j`` (``0 < j < nframes``) of group ``k`` adds ``(nframes - j) /
    nframes`` of its charge ``C`` to difference ``k-1 -> k`` and ``j / nframes`` of it to ``k ->
    k+1``; the two-group difference ``G[k+1] - G[k-1] = da + db`` holds all of it.

    Parameters
    ----------
    da, db : float
        The two consecutive first differences, electrons.
    base : float
        Expected difference (median of ``m`` other differences), electrons.
    m : int
        Number of differences behind ``base`` (>= 1).
    noise_var : float
        Read-noise variance of one group difference, electrons**2 (``(rn_CDS gain)**2 /
        nframes``); a group read has half of it.
    nframes : float
        Frames averaged per group.
    ctab : ndarray
        ``MEDIAN_VARIANCE``.

    Returns
    -------
    float
        ``(da + db - 2 base) / sqrt(V)`` with ``V = 2P + noise_var + 4 c (P + 1.5 noise_var)``
        (``P = |base|`` the Poisson variance of one difference, ``c P`` + ``c noise_var`` the
        variance of the median, ``2 c noise_var`` its covariance with the pair through a shared
        group read) when the pair looks like one split hit: both parts exceed ``base`` by
        ``SPLIT_POSITIVE_SIGMA`` of their own standard deviation and ``(nframes - 1) e_min >=
        (1 - SPLIT_RATIO_TOLERANCE) e_max`` holds within ``SPLIT_RATIO_SIGMA`` standard
        deviations (``e = d - base``); otherwise -1 (a single large hit next to a clean
        difference fails these tests).
    """
    p = abs(base)
    c = _median_variance(m, ctab)
    ea = da - base
    eb = db - base
    if ea < eb:
        emin = ea
        emax = eb
    else:
        emin = eb
        emax = ea
    var1 = p + noise_var                               # one difference
    if emin <= SPLIT_POSITIVE_SIGMA * np.sqrt(var1 + c * (p + 2.0 * noise_var)):
        return -1.0
    f1 = nframes - 1.0
    g1 = 1.0 - SPLIT_RATIO_TOLERANCE
    var_r = ((f1 * f1 + g1 * g1) * var1 + f1 * g1 * noise_var
             + (f1 - g1) * (f1 - g1) * c * (p + 2.0 * noise_var))
    if f1 * emin - g1 * emax < -SPLIT_RATIO_SIGMA * np.sqrt(var_r):
        return -1.0
    return (ea + eb) / np.sqrt(2.0 * p + noise_var + 4.0 * c * (p + 1.5 * noise_var))


@njit(cache=True, nogil=True, error_model="numpy")
def _skip1(k, r):
    """Index in the full sorted array of element ``k`` of the array without position ``r``."""
    if k >= r:
        return k + 1
    return k


@njit(cache=True, nogil=True, error_model="numpy")
def _skip2(k, ra, rb):
    """Index in the full sorted array of element ``k`` of the array without positions ``ra < rb``."""
    i = k
    if i >= ra:
        i += 1
    if i >= rb:
        i += 1
    return i


@njit(cache=True, nogil=True, error_model="numpy")
def _sort_with_index(v, idx, n):
    """Sort ``v[:n]`` in place, carrying ``idx[:n]`` along."""
    if n <= 32:
        for i in range(1, n):
            a = v[i]
            b = idx[i]
            j = i - 1
            while j >= 0 and v[j] > a:
                v[j + 1] = v[j]
                idx[j + 1] = idx[j]
                j -= 1
            v[j + 1] = a
            idx[j + 1] = b
    else:
        order = np.argsort(v[:n])
        tv = v[:n][order]
        ti = idx[:n][order]
        v[:n] = tv
        idx[:n] = ti


@njit(cache=True, nogil=True, error_model="numpy")
def _select_inplace(a, n, k):
    """``k``-th smallest of ``a[:n]`` (0-based), reordering ``a[:n]`` so that ``a[:k]`` holds
    the smaller values (quickselect, as :func:`median_inplace`)."""
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
    return a[k]


@njit(cache=True, nogil=True, error_model="numpy")
def _pair_needed(lb, smx, m, noise_var, thr, ctab):
    """Smallest ``da + db - 2 base`` (electrons) that can pass :func:`_split_z` > ``thr`` when
    the baseline, a median of ``m`` differences, lies in ``[lb, smx]`` (electrons)."""
    if lb <= 0.0 <= smx:
        pmin = 0.0
    else:
        pmin = min(abs(lb), abs(smx))
    c = _median_variance(m, ctab)
    return thr * np.sqrt(2.0 * pmin + noise_var + 4.0 * c * (pmin + 1.5 * noise_var))


@njit(cache=True, nogil=True, error_model="numpy")
def _best_split_pair(dif, absd, nd, ndg, noise_var, nframes, thr, ctab, sv, si, rank, work):
    """Iterative mode: the most significant split hit among the remaining differences, or -1.

    Candidates are consecutive differences ``j, j+1`` of one integration, both remaining
    (``absd`` not NaN); the baseline is the median of the other remaining (signed) differences,
    so a hit contaminating two of three differences does not hide itself. Returns ``j`` of the
    pair with the largest :func:`_split_z` above ``thr``. ``sv``, ``si``, ``rank``, ``work``:
    scratch arrays of ``nd`` values.
    """
    n = 0
    smx = -np.inf                                     # largest and second largest value
    smx2 = -np.inf
    for j in range(nd):
        if not np.isnan(absd[j]):
            v = dif[j]
            sv[n] = v
            si[n] = j
            n += 1
            if v > smx:
                smx2 = smx
                smx = v
            elif v > smx2:
                smx2 = v
    if n < 3:
        return -1
    m = n - 2
    h = m // 2
    # bound: removing the pair only raises order statistics, so the baseline (median of the
    # m others) is at least the same order statistic lb of all n values, and
    # da + db - 2 base <= max + second max - 2 lb; long lists are checked by selection before
    # they are sorted
    if n > 12:
        for p in range(n):
            work[p] = sv[p]
        lb = _select_inplace(work, n, h)
        if m % 2 == 0:
            lo = work[0]
            for p in range(1, h):
                if work[p] > lo:
                    lo = work[p]
            lb = 0.5 * (lo + lb)
        if (smx + smx2 - 2.0 * lb) * (1.0 + 1e-9) < _pair_needed(lb, smx, m, noise_var, thr, ctab):
            return -1
    _sort_with_index(sv, si, n)
    if m % 2 == 1:
        lb = sv[h]
    else:
        lb = 0.5 * (sv[h - 1] + sv[h])
    need = _pair_needed(lb, smx, m, noise_var, thr, ctab)
    if (smx + smx2 - 2.0 * lb) * (1.0 + 1e-9) < need:
        return -1
    for p in range(n):
        rank[si[p]] = p
    best = -1
    bestz = thr
    for j in range(nd - 1):
        if j % ndg == ndg - 1 or np.isnan(absd[j]) or np.isnan(absd[j + 1]):
            continue
        ra = rank[j]
        rb = rank[j + 1]
        if ra > rb:
            ra, rb = rb, ra
        if m % 2 == 1:
            base = sv[_skip2(h, ra, rb)]
        else:
            base = 0.5 * (sv[_skip2(h - 1, ra, rb)] + sv[_skip2(h, ra, rb)])
        if (dif[j] + dif[j + 1] - 2.0 * base) * (1.0 + 1e-9) < need:
            continue                                  # cannot pass (need: for the lowest base)
        z = _split_z(dif[j], dif[j + 1], base, m, noise_var, nframes, ctab)
        if z > bestz:
            bestz = z
            best = j
    return best


@njit(cache=True, nogil=True, error_model="numpy")
def _complete_split_hits(dif, flag, nd, ndg, noise_var, nframes, thr, ctab, sv, si, rank, mark):
    """Flag the other part of split hits next to flagged differences (in place in ``flag``).

    A difference ``b`` next to a flagged difference ``a`` (same integration) is flagged when the
    pair passes :func:`_split_z` against the median of the other unflagged differences: one
    part of a hit between frames may pass the single-difference test while the other does
    not, and it would bias the next ramp segment. Flags found here do not propagate further.
    """
    nu = 0
    for j in range(nd):
        mark[j] = False
        if not flag[j] and not np.isnan(dif[j]):
            sv[nu] = dif[j]
            si[nu] = j
            nu += 1
    if nu < 2:
        return
    _sort_with_index(sv, si, nu)
    for p in range(nu):
        rank[si[p]] = p
    m = nu - 1
    h = m // 2
    for a in range(nd):
        if not flag[a]:
            continue
        for b in (a - 1, a + 1):
            if b < 0 or b >= nd or b // ndg != a // ndg or flag[b] or np.isnan(dif[b]):
                continue
            rb = rank[b]
            if m % 2 == 1:
                base = sv[_skip1(h, rb)]
            else:
                base = 0.5 * (sv[_skip1(h - 1, rb)] + sv[_skip1(h, rb)])
            if _split_z(dif[a], dif[b], base, m, noise_var, nframes, ctab) > thr:
                mark[b] = True
    for j in range(nd):
        if mark[j]:
            flag[j] = True


@njit(cache=True, nogil=True, error_model="numpy")
def _sigclip_flags(vals, idx, n, thr, work, out_clip):
    """astropy ``sigma_clip(sigma=thr, maxiters=5)`` of ``vals[:n]``; ``out_clip[idx[j]] = True`` for clipped."""
    keep = np.ones(n, dtype=np.bool_)
    nk = n
    for _ in range(5):
        if nk == 0:
            break
        m = 0
        s = 0.0
        for j in range(n):
            if keep[j]:
                work[m] = vals[j]
                s += vals[j]
                m += 1
        mean = s / nk
        ss = 0.0
        for j in range(n):
            if keep[j]:
                dv = vals[j] - mean
                ss += dv * dv
        std = np.sqrt(ss / nk)
        cen = median_inplace(work, nk)
        lo = cen - thr * std
        hi = cen + thr * std
        nchanged = 0
        for j in range(n):
            if keep[j] and (vals[j] < lo or vals[j] > hi):
                keep[j] = False
                nchanged += 1
        nk -= nchanged
        if nchanged == 0:
            break
    for j in range(n):
        if not keep[j]:
            out_clip[idx[j]] = True


@njit(cache=True, nogil=True, error_model="numpy")
def _detect_kernel(y0, y1, data, gdq, gain2d, rn2d, nframes, mode, only_use_ints, thr, thr3, thr2,
                   nb_min, nb_max, do_nb, e1, e2, do_after, split, ctab, out, nb):
    nints, ngroups, ny, nx = data.shape
    ndg = ngroups - 1
    nd = nints * ndg
    for y in range(y0, y1):
        sv = np.empty(nd, dtype=np.float64)
        si = np.empty(nd, dtype=np.int64)
        rank = np.empty(nd, dtype=np.int64)
        dif = np.empty(nd, dtype=np.float64)
        absd = np.empty(nd, dtype=np.float64)
        work = np.empty(nd, dtype=np.float64)
        vals = np.empty(nd, dtype=np.float64)
        vidx = np.empty(nd, dtype=np.int64)
        clip = np.zeros(nd, dtype=np.bool_)
        flag = np.zeros(nd, dtype=np.bool_)
        for x in range(nx):
            g32 = np.float32(gain2d[y, x])
            if not (g32 > 0):
                continue
            rn_e = np.float32(np.float32(rn2d[y, x]) * g32)
            noise_var = np.float64(np.float32(rn_e * rn_e)) / nframes
            # first differences in electrons (NaN when either group is unusable)
            nv = 0
            for i in range(nints):
                prev_ok = (gdq[i, 0, y, x] & (DO_NOT_USE | SATURATED)) == 0
                prev = np.float32(data[i, 0, y, x]) * g32
                for k in range(ndg):
                    cur_ok = (gdq[i, k + 1, y, x] & (DO_NOT_USE | SATURATED)) == 0
                    cur = np.float32(data[i, k + 1, y, x]) * g32
                    j = i * ndg + k
                    if prev_ok and cur_ok:
                        dv = np.float64(np.float32(cur - prev))
                    else:
                        dv = np.nan
                    dif[j] = dv
                    if not np.isnan(dv):
                        work[nv] = dv
                        nv += 1
                    flag[j] = False
                    prev = cur
                    prev_ok = cur_ok
            if nv > 0:
                med = median_inplace(work, nv)
            else:
                med = np.nan
            sigma = np.sqrt(abs(med) + noise_var)
            if sigma == 0.0:
                sigma = np.nan
            if mode == MODE_SINGLE:
                for j in range(nd):
                    if not np.isnan(dif[j]) and abs(dif[j] - med) / sigma > thr:
                        flag[j] = True
                if split and nv > 0:
                    # split hits among the unflagged differences, most significant first (a
                    # pair passes only if da + db - 2 M exceeds thr standard deviations)
                    need = _pair_needed(med, med, nv, noise_var, thr, ctab)
                    while True:
                        best = -1
                        bestz = thr
                        for i in range(nints):
                            for j in range(i * ndg, (i + 1) * ndg - 1):
                                # NaN differences fail this test
                                if not (dif[j] + dif[j + 1] - 2.0 * med) * (1.0 + 1e-9) >= need:
                                    continue
                                if flag[j] or flag[j + 1]:
                                    continue
                                z = _split_z(dif[j], dif[j + 1], med, nv, noise_var, nframes, ctab)
                                if z > bestz:
                                    bestz = z
                                    best = j
                        if best < 0:
                            break
                        flag[best] = True
                        flag[best + 1] = True
            elif mode == MODE_ITERATIVE:
                for j in range(nd):
                    absd[j] = abs(dif[j])
                tmin = min(thr, min(thr2, thr3))
                for it in range(nd):
                    n = 0
                    mx = -np.inf
                    mn = np.inf
                    for j in range(nd):
                        if not np.isnan(absd[j]):
                            n += 1
                            if absd[j] > mx:
                                mx = absd[j]
                            if absd[j] < mn:
                                mn = absd[j]
                    if n < 2:
                        break
                    if split and n >= 3:
                        # a hit between the frames of a group: both differences at once. Cheap
                        # bound first (see _best_split_pair), with the three smallest values
                        # s0 <= s1 <= s2: the median of the m = n - 2 others is at least s0
                        # (m = 1), (s0 + s1) / 2 (m = 2), s1 (m = 3, 4), s2 (m >= 5)
                        smx = -np.inf
                        smx2 = -np.inf
                        s0 = np.inf
                        s1 = np.inf
                        s2 = np.inf
                        for j in range(nd):           # branch-free updates (no NaN here)
                            if not np.isnan(absd[j]):
                                v = dif[j]
                                smx2 = max(smx2, min(smx, v))
                                smx = max(smx, v)
                                s2 = min(s2, max(s1, v))
                                s1 = min(s1, max(s0, v))
                                s0 = min(s0, v)
                        if n == 3:
                            lb = s0
                        elif n == 4:
                            lb = 0.5 * (s0 + s1)
                        elif n <= 6:
                            lb = s1
                        else:
                            lb = s2
                        if (smx + smx2 - 2.0 * lb) * (1.0 + 1e-9) < _pair_needed(
                                lb, smx, n - 2, noise_var, thr, ctab):
                            best = -1
                        else:
                            best = _best_split_pair(dif, absd, nd, ndg, noise_var, nframes, thr,
                                                    ctab, sv, si, rank, work)
                        if best >= 0:
                            flag[best] = True
                            flag[best + 1] = True
                            absd[best] = np.nan
                            absd[best + 1] = np.nan
                            continue
                    # cheap bound: the clipped median lies in [mn, mx], so no ratio can exceed
                    # (mx - mn) / sqrt(mn + noise); skip the exact test when that is below every
                    # threshold (with a margin for float32 rounding)
                    if (mx - mn) * (1.0 + 1e-6) + 1e-6 * mx < tmin * np.sqrt(mn + noise_var):
                        break
                    m = 0
                    if n >= 4:
                        for j in range(nd):
                            if not np.isnan(absd[j]) and absd[j] != mx:
                                work[m] = absd[j]
                                m += 1
                        medi = median_inplace(work, m) if m > 0 else np.nan
                    elif n == 3:
                        for j in range(nd):
                            if not np.isnan(absd[j]):
                                work[m] = absd[j]
                                m += 1
                        medi = median_inplace(work, 3)
                    else:
                        medi = np.inf
                        for j in range(nd):
                            if not np.isnan(absd[j]) and absd[j] < medi:
                                medi = absd[j]
                    if it > 0:
                        medi = np.float64(np.float32(medi))  # the reference keeps it in float32
                    sig_i = np.sqrt(abs(medi) + noise_var)
                    if sig_i == 0.0:
                        sig_i = np.nan
                    rmax = -np.inf
                    for j in range(nd):
                        if not np.isnan(absd[j]):
                            r = abs(np.float32(absd[j] - medi)) / sig_i
                            work[j] = r
                            if r > rmax:
                                rmax = r
                        else:
                            work[j] = np.nan
                    if n >= 4:
                        t = thr
                    elif n == 3:
                        t = thr3
                    else:
                        t = thr2
                    if not (rmax > t):
                        break
                    for j in range(nd):
                        if work[j] == rmax:
                            flag[j] = True
                            absd[j] = np.nan
            else:  # sigma clipping
                for j in range(nd):
                    clip[j] = False
                if only_use_ints:
                    for k in range(ndg):
                        n = 0
                        for i in range(nints):
                            j = i * ndg + k
                            if not np.isnan(dif[j]):
                                vals[n] = dif[j]
                                vidx[n] = j
                                n += 1
                        _sigclip_flags(vals, vidx, n, thr, work, clip)
                else:
                    n = 0
                    for j in range(nd):
                        if not np.isnan(dif[j]):
                            vals[n] = dif[j]
                            vidx[n] = j
                            n += 1
                    _sigclip_flags(vals, vidx, n, thr, work, clip)
                for j in range(nd):
                    flag[j] = clip[j]
            if split:
                anyflag = False
                for j in range(nd):
                    if flag[j]:
                        anyflag = True
                        break
                if anyflag:
                    _complete_split_hits(dif, flag, nd, ndg, noise_var, nframes, thr, ctab, sv,
                                         si, rank, clip)
            # write primary flags (on the later group) and the neighbour / after-jump bits
            for i in range(nints):
                for k in range(ndg):
                    j = i * ndg + k
                    q = out[i, k + 1, y, x]
                    if flag[j]:
                        q |= np.uint8(JUMP_DET)
                        out[i, k + 1, y, x] = q
                    b = np.uint8(0)
                    dv = dif[j]
                    if do_nb and (q & JUMP_DET):
                        r = abs(dv - med) / sigma
                        if r < nb_max and r > nb_min:
                            b |= np.uint8(1)
                    if do_after:
                        ej = dv - med
                        if ej >= e1:
                            b |= np.uint8(2)
                        if ej >= e2:
                            b |= np.uint8(4)
                    nb[i, k + 1, y, x] = b


@njit(cache=True, nogil=True, error_model="numpy")
def _neighbour_kernel(y0, y1, out, nb, do_nb, do_after, n1, n2):
    nints, ngroups, ny, nx = out.shape
    bad = np.uint8(SATURATED | DO_NOT_USE)
    jump = np.uint8(JUMP_DET)
    for y in range(y0, y1):
        big1 = np.zeros(ngroups, dtype=np.bool_)
        big2 = np.zeros(ngroups, dtype=np.bool_)
        for i in range(nints):
            if do_nb:
                for g in range(1, ngroups):
                    for x in range(nx):
                        src = nb[i, g, y, x] & 1
                        if y > 0:
                            src |= nb[i, g, y - 1, x] & 1
                        if y < ny - 1:
                            src |= nb[i, g, y + 1, x] & 1
                        if x > 0:
                            src |= nb[i, g, y, x - 1] & 1
                        if x < nx - 1:
                            src |= nb[i, g, y, x + 1] & 1
                        if src and (out[i, g, y, x] & bad) == 0:
                            out[i, g, y, x] |= jump
            if do_after:
                jm1 = min(n1, ngroups - 2)
                jm2 = min(n2, ngroups - 2)
                for x in range(nx):
                    for g in range(ngroups):
                        js = g > 0 and (out[i, g, y, x] & jump) != 0
                        big1[g] = js and (nb[i, g, y, x] & 2) != 0
                        big2[g] = js and (nb[i, g, y, x] & 4) != 0
                    for g in range(ngroups):
                        if big1[g] or big2[g]:
                            last = g
                            if big1[g]:
                                last = max(last, g + jm1)
                            if big2[g]:
                                last = max(last, g + jm2)
                            for h in range(g, min(last, ngroups - 1) + 1):
                                if (out[i, h, y, x] & bad) == 0:
                                    out[i, h, y, x] |= jump
            for g in range(ngroups):
                for x in range(nx):
                    q = out[i, g, y, x]
                    if (q & jump) and (q & bad):
                        out[i, g, y, x] = q ^ jump


def detect_jumps(data, groupdq, gain, readnoise, *, nframes=1, rejection_threshold=4.0,
                 three_group_rejection_threshold=6.0, four_group_rejection_threshold=5.0,
                 flag_4_neighbors=True, max_jump_to_flag_neighbors=1000.0,
                 min_jump_to_flag_neighbors=10.0, after_jump_flag_dn1=0.0, after_jump_flag_time1=0.0,
                 after_jump_flag_dn2=0.0, after_jump_flag_time2=0.0, tgroup=None, minimum_groups=3,
                 minimum_sigclip_groups=100, only_use_ints=True, min_diffs_single_pass=10,
                 flag_split_jumps=True, maximum_cores=1):
    """Flag cosmic-ray jumps (JUMP_DET) with the two-point difference method.

    Parameters
    ----------
    data : ndarray, float32, shape (nints, ngroups, ny, nx)
        Ramp data, DN.
    groupdq : ndarray, uint8, same shape
        Group DQ; DO_NOT_USE and SATURATED groups are not used. Not modified.
    gain : ndarray, shape (ny, nx)
        Gain, e/DN.
    readnoise : ndarray, shape (ny, nx)
        CDS read noise, DN.
    nframes : int
        Frames averaged per group.
    rejection_threshold : float
        Threshold (sigma) with >= 4 usable differences, and for sigma clipping.
    three_group_rejection_threshold, four_group_rejection_threshold : float
        Thresholds (sigma) with 2 and 3 usable differences (iterative mode).
    flag_4_neighbors : bool
        Flag the 4 neighbours of jumps between ``min_jump_to_flag_neighbors`` and
        ``max_jump_to_flag_neighbors`` (sigma).
    max_jump_to_flag_neighbors, min_jump_to_flag_neighbors : float
        Sigma limits for neighbour flagging.
    after_jump_flag_dn1, after_jump_flag_dn2 : float
        Jump amplitudes, DN, above which later groups are flagged too.
    after_jump_flag_time1, after_jump_flag_time2 : float
        Time after such jumps to flag, s (``int(time // tgroup)`` groups).
    tgroup : float, optional
        Group time, s; required when an after-jump time is > 0.
    minimum_groups : int
        Fewest usable groups per integration for the two-point method (3).
    minimum_sigclip_groups : int
        Integrations (``only_use_ints``) or usable groups from which sigma clipping is used.
    only_use_ints : bool
        Sigma-clip each difference across integrations only.
    min_diffs_single_pass : int
        Usable differences per integration from which the single pass replaces the iterative
        search (10).
    flag_split_jumps : bool
        With multi-frame groups (``nframes > 1``; not in sigma-clipping mode) also look for
        cosmic rays arriving between the frames of a group, whose charge is split over two
        consecutive differences: their sum (the two-group difference) is tested against twice
        the baseline difference with its own variance, and both groups are flagged (see the
        module notes). False: the reference's behaviour.
    maximum_cores : int or {'none', 'quarter', 'half', 'all'}
        Threads; the result is bit-identical for any value.

    Returns
    -------
    ndarray, uint8
        New group DQ with JUMP_DET (4) set. The input is returned unchanged (as a copy) when
        there are too few usable groups (e.g. ngroups <= 2 with fewer than
        ``minimum_sigclip_groups`` integrations).
    """
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"data must be 4-D (nints, ngroups, ny, nx), got shape {data.shape}")
    nints, ngroups, ny, nx = data.shape
    data = np.ascontiguousarray(data, dtype=np.float32)
    gdq = np.ascontiguousarray(groupdq, dtype=np.uint8)
    if gdq.shape != data.shape:
        raise ValueError("groupdq must have the shape of data")
    out = gdq.copy()
    if ngroups < 2:
        return out
    gain32 = np.array(np.broadcast_to(gain, (ny, nx)), dtype=np.float32, order='C')
    rn32 = np.array(np.broadcast_to(readnoise, (ny, nx)), dtype=np.float32, order='C')

    # groups flagged DO_NOT_USE in every pixel, per integration (the reference's usable counts)
    all_dnu = np.array([[bool(np.all(gdq[i, k] & DO_NOT_USE)) for k in range(ngroups)] for i in range(nints)])
    nflag = all_dnu.sum(axis=1)
    min_usable_groups = ngroups - int(nflag.max())
    total_groups = nints * ngroups - int(nflag.sum())
    min_usable_diffs = min_usable_groups - 1
    if only_use_ints:
        sigclip_ok = nints >= minimum_sigclip_groups
    else:
        sigclip_ok = total_groups >= minimum_sigclip_groups
    if min_usable_groups < minimum_groups and not sigclip_ok:
        return out
    if sigclip_ok:
        mode = MODE_SIGCLIP
    elif min_usable_diffs >= min_diffs_single_pass:
        mode = MODE_SINGLE
    else:
        mode = MODE_ITERATIVE

    n1 = n2 = 0
    if after_jump_flag_time1 > 0 or after_jump_flag_time2 > 0:
        if not tgroup:
            raise ValueError("tgroup is required for after-jump flagging")
        n1 = int(after_jump_flag_time1 // tgroup)
        n2 = int(after_jump_flag_time2 // tgroup)
    do_after = n1 > 0 or n2 > 0
    if do_after:
        with np.errstate(invalid="ignore"):
            gmed = float(np.nanmedian(gain32))
        e1 = after_jump_flag_dn1 * gmed
        e2 = after_jump_flag_dn2 * gmed
    else:
        e1 = e2 = np.inf
    split = bool(flag_split_jumps) and nframes > 1 and mode != MODE_SIGCLIP
    nb = np.zeros_like(out)
    nthreads = resolve_cores(maximum_cores)
    run_rows(_detect_kernel, ny, nthreads,
             data, gdq, gain32, rn32, float(nframes), mode, bool(only_use_ints),
             float(rejection_threshold), float(four_group_rejection_threshold),
             float(three_group_rejection_threshold), float(min_jump_to_flag_neighbors),
             float(max_jump_to_flag_neighbors), bool(flag_4_neighbors), float(e1), float(e2),
             do_after, split, MEDIAN_VARIANCE, out, nb)
    if mode == MODE_SIGCLIP:
        # the reference's guard: a group plane entirely JUMP or DO_NOT_USE loses jump-only flags
        for i in range(nints):
            for k in range(ngroups):
                plane = out[i, k]
                if np.all(plane & (JUMP_DET | DO_NOT_USE)):
                    lost = plane == JUMP_DET
                    plane[lost] = 0
                    nb[i, k][lost] &= np.uint8(0xFE)
    # neighbours read the row above and below: only after every row is done
    run_rows(_neighbour_kernel, ny, nthreads, out, nb, bool(flag_4_neighbors), do_after, n1, n2)
    return out
