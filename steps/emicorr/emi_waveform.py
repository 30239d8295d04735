"""MIRI EMI correction: fold the readout-ordered pixel time series at each EMI frequency and
subtract the binned mean waveform (jwst ``emicorr`` "on-the-fly" reference wave).

Readout timing model (MIRI, 10 us pixel clock)
----------------------------------------------
* The four amplifiers read in parallel: column ``x`` of a row is read at clock ``x // 4``.
* A row takes ``rowclocks = nx // 4 + extra_rowclocks`` clocks (default ``extra_rowclocks``
  = 13, which gives the 271 clocks per row of the 1032-column full frame).
* A frame takes ``frameclocks`` clocks (default ``ny * rowclocks``; pass the operational value
  for subarrays with extra frame overheads).
* MIRI groups are single frames (NFRAMES = 1); integrations are separated by
  ``nresets_between_ints`` reset frames (default 1), so group ``g`` of integration ``i`` is
  frame ``i * (ngroups + nresets_between_ints) + g``.
* Pixel time ``t = clock * 10 us``; EMI phase ``= frac(t * frequency)``.

The full frame (1024 x 1032) gives 1024 x 271 x 10 us = 2.775 s, its TFRAME. Subarrays have
longer rows than ``nx / 4 + 13``; the step plugin therefore derives ``frameclocks`` from
TFRAME and the row overhead from ``frameclocks // ny - nx // 4``, and the reset count from
NRESETS.

Algorithm, for each frequency in turn
-------------------------------------
Model every good sample as ``d[p, g] = a_p + b_p g + W(phase[p, g]) + noise``: a straight
line per pixel and integration (bias + slope, flags ignored as in jwst's "crude slope and
bias") plus one waveform ``W`` common to all pixels, tabulated in ``nbins`` phase bins
(default one bin per 10 us clock of the period, between 16 and 256). Solving for ``W`` with
the per-pixel lines projected out is a linear least-squares problem whose normal equations
(``nbins x nbins``) are accumulated in one numba pass over the ramp; only well-determined
modes are kept (eigenvalues above ``rcond`` times the largest). ``W`` (zero mean) is then
subtracted from every sample at its phase. Samples flagged DO_NOT_USE or SATURATED, and
non-finite ones, do not enter the fit (they are still corrected).

jwst bins the residuals of a per-pixel line fit directly; that estimate is biased low
because each pixel's line also absorbs part of the pixel's own EMI (by about 2/ngroups for
unrelated phases, and almost entirely when a pixel's groups have nearly the same phase). The
joint fit removes that bias whenever the waveform is measurable at all.

Simplification vs jwst: we do not align to / scale a reference waveform from the MIREMI
reference file (jwst's default), we subtract the measured waveform itself (jwst's
``onthefly_corr_freq`` mode). An EMI pattern that is in phase across all groups of every
pixel (e.g. 390.625 Hz when the frame time is a multiple of its period, jwst issue 8427) is
indistinguishable from per-pixel bias and cannot be measured; it is then left alone (it does
not bias slopes either).
"""
import numba
import numpy as np
from numba import njit, prange

__all__ = ["EMI_FREQUENCIES_HZ", "subtract_emi", "pixel_phase"]

#: Nominal MIRI EMI frequencies (Hz). The MIREMI reference file is authoritative.
EMI_FREQUENCIES_HZ = {"Hz390": 390.625, "Hz218": 218.3, "Hz164": 164.9, "Hz10": 10.039}

CLOCK_S = 10.0e-6


def pixel_phase(nints, ngroups, ny, nx, frequency, *, extra_rowclocks=13, frameclocks=None,
                nresets_between_ints=1):
    """EMI phase (cycles, in [0, 1)) of every sample under the timing model above.

    Parameters
    ----------
    nints, ngroups, ny, nx : int
        Ramp shape.
    frequency : float
        EMI frequency in Hz.
    extra_rowclocks : int, optional
        Overhead clocks per row beyond ``nx // 4``.
    frameclocks : int, optional
        Clocks per frame (default ``ny * rowclocks``).
    nresets_between_ints : int, optional
        Reset frames between integrations.

    Returns
    -------
    numpy.ndarray
        float64 (nints, ngroups, ny, nx).
    """
    rowclocks = nx // 4 + extra_rowclocks
    if frameclocks is None:
        frameclocks = ny * rowclocks
    i, g, y, x = np.meshgrid(np.arange(nints), np.arange(ngroups), np.arange(ny), np.arange(nx),
                             indexing="ij")
    clk = ((i * (ngroups + nresets_between_ints) + g) * frameclocks + y * rowclocks
           + x // 4).astype(np.float64)
    ph = clk * (frequency * CLOCK_S)
    return ph - np.floor(ph)


def _bin_table(nbins, ngroups, delta):
    """Exact phase-bin assignment of every group from a pixel's group-0 phase.

    All groups of a pixel are ``frameclocks`` apart, so group ``g`` has phase
    ``frac(phase0 + g * delta)``. The bin of every group is constant on the intervals of
    ``phase0`` between the points ``frac(j / nbins - g * delta)``.

    Returns
    -------
    edges : numpy.ndarray
        float64 (nint,), sorted interval starts in [0, 1), ``edges[0] == 0``.
    table : numpy.ndarray
        int64 (nint, ngroups): phase bin of each group for a pixel whose group-0 phase lies in
        the interval.
    """
    j = np.arange(nbins) / nbins
    g = np.arange(ngroups) * delta
    pts = np.mod(j[None, :] - g[:, None], 1.0).ravel()
    edges = np.unique(np.concatenate([[0.0], pts[pts < 1.0]]))
    mid = 0.5 * (edges + np.append(edges[1:], 1.0))
    table = np.floor(np.mod(mid[:, None] + g[None, :], 1.0) * nbins).astype(np.int64)
    return edges, np.minimum(table, nbins - 1)


@njit(cache=True)
def _interval(i, y, x, ngroups, nresets, frameclocks, rowclocks, fclk, edges):
    clk0 = i * (ngroups + nresets) * frameclocks + y * rowclocks + x // 4
    ph = clk0 * fclk
    ph -= np.floor(ph)
    return np.searchsorted(edges, ph, side="right") - 1


@njit(parallel=True, cache=True)
def _normal_equations(data, groupdq, nbins, edges, table, nresets, frameclocks, rowclocks, fclk,
                      nchunks):
    """Accumulate A = sum_p X_p^T P_p X_p and r = sum_p X_p^T P_p d_p over pixels.

    X_p (ngood x nbins) assigns each good group of pixel p to its phase bin; P_p projects out
    a straight line in group number (the pixel's own bias and slope). Pixels with all groups
    good only add to ``r`` and to a count per phase interval (their A contribution depends on
    the interval alone and is added afterwards); the others update A directly.
    """
    nints, ngroups, ny, nx = data.shape
    nint = table.shape[0]
    A = np.zeros((nchunks, nbins, nbins))
    rhs = np.zeros((nchunks, nbins))
    cnt = np.zeros((nchunks, nbins))
    nfull = np.zeros((nchunks, nint))
    gmean = (ngroups - 1) / 2.0
    sxxf = 0.0
    for g in range(ngroups):
        sxxf += (g - gmean) ** 2
    u1f = np.full(ngroups, 1.0 / np.sqrt(ngroups))
    u2f = np.empty(ngroups)
    for g in range(ngroups):
        u2f[g] = (g - gmean) / np.sqrt(sxxf)
    nrows = nints * ny
    per = (nrows + nchunks - 1) // nchunks
    for c in prange(nchunks):
        b = np.empty(ngroups, dtype=np.int64)
        gg = np.empty(ngroups)
        d = np.empty(ngroups)
        u1 = np.empty(ngroups)
        u2 = np.empty(ngroups)
        for r in range(c * per, min(nrows, (c + 1) * per)):
            i = r // ny
            y = r % ny
            for x in range(nx):
                t = _interval(i, y, x, ngroups, nresets, frameclocks, rowclocks, fclk, edges)
                m = 0
                for g in range(ngroups):
                    v = data[i, g, y, x]
                    if groupdq[i, g, y, x] & 3 or not np.isfinite(v):
                        continue
                    b[m] = table[t, g]
                    gg[m] = g
                    d[m] = v
                    m += 1
                if m < 3:
                    continue
                if m == ngroups:
                    dot1 = 0.0
                    dot2 = 0.0
                    for k in range(m):
                        dot1 += u1f[k] * d[k]
                        dot2 += u2f[k] * d[k]
                    for k in range(m):
                        bk = b[k]
                        cnt[c, bk] += 1.0
                        rhs[c, bk] += d[k] - u1f[k] * dot1 - u2f[k] * dot2
                    nfull[c, t] += 1.0
                    continue
                gbar = 0.0
                for k in range(m):
                    gbar += gg[k]
                gbar /= m
                sxx = 0.0
                for k in range(m):
                    sxx += (gg[k] - gbar) ** 2
                dot1 = 0.0
                dot2 = 0.0
                for k in range(m):
                    u1[k] = 1.0 / np.sqrt(m)
                    u2[k] = (gg[k] - gbar) / np.sqrt(sxx)
                    dot1 += u1[k] * d[k]
                    dot2 += u2[k] * d[k]
                for k in range(m):
                    bk = b[k]
                    A[c, bk, bk] += 1.0
                    cnt[c, bk] += 1.0
                    rhs[c, bk] += d[k] - u1[k] * dot1 - u2[k] * dot2
                    for l in range(m):
                        A[c, bk, b[l]] -= u1[k] * u1[l] + u2[k] * u2[l]
    return A.sum(axis=0), rhs.sum(axis=0), cnt.sum(axis=0), nfull.sum(axis=0), u1f, u2f


def _add_full_pixels(A, nfull, table, u1f, u2f):
    """Add the A contribution of the pixels with all groups good, per phase interval."""
    used = nfull > 0
    n = nfull[used]
    tb = table[used]  # (nused, ngroups)
    ng = tb.shape[1]
    np.add.at(A, (tb.ravel(), tb.ravel()), np.repeat(n, ng))
    h = np.outer(u1f, u1f) + np.outer(u2f, u2f)
    rows = np.broadcast_to(tb[:, :, None], (tb.shape[0], ng, ng)).ravel()
    cols = np.broadcast_to(tb[:, None, :], (tb.shape[0], ng, ng)).ravel()
    np.add.at(A, (rows, cols), -(n[:, None, None] * h[None]).ravel())
    return A


def _solve_waveform(A, rhs, counts, rcond=1e-3):
    """Least-squares waveform from the normal equations, keeping only measurable modes; zero mean.

    Eigen-decomposition of ``A``: modes with eigenvalue above ``rcond`` times the largest (and
    above a tiny absolute floor) are inverted, the others (absorbed by the per-pixel lines: a
    constant, or everything when all groups of each pixel share one phase) are left out. A
    ridge instead would shrink the weak but real modes of slowly drifting phases.
    """
    used = counts > 0
    w = np.zeros(rhs.size)
    if used.sum() < 2:
        return w
    Au = A[np.ix_(used, used)]
    evals, evecs = np.linalg.eigh(0.5 * (Au + Au.T))
    keep = evals > max(rcond * evals.max(), 1e-6 * counts[used].mean())
    coef = evecs[:, keep].T @ rhs[used] / evals[keep]
    w[used] = evecs[:, keep] @ coef
    w[used] -= np.average(w[used], weights=counts[used])
    return w


@njit(parallel=True, cache=True)
def _subtract(data, wave, edges, table, nresets, frameclocks, rowclocks, fclk):
    nints, ngroups, ny, nx = data.shape
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        t = np.empty(nx, dtype=np.int64)
        for x in range(nx):
            t[x] = _interval(i, y, x, ngroups, nresets, frameclocks, rowclocks, fclk, edges)
        for g in range(ngroups):
            row = data[i, g, y]
            for x in range(nx):
                row[x] = row[x] - wave[table[t[x], g]]


def subtract_emi(data, frequencies, *, groupdq=None, nbins=None, extra_rowclocks=13,
                 frameclocks=None, nresets_between_ints=1, rcond=1e-3):
    """Remove periodic EMI at the given frequencies from a MIRI ramp (in place).

    Parameters
    ----------
    data : numpy.ndarray
        Raw ramp, float32 (nints, ngroups, ny, nx), DN. Modified in place.
    frequencies : sequence of float or str
        EMI frequencies in Hz, or keys of :data:`EMI_FREQUENCIES_HZ` (e.g. ``"Hz390"``).
    groupdq : numpy.ndarray, optional
        Group DQ (uint8, same shape); DO_NOT_USE/SATURATED samples are not used to measure
        the waveform (they are still corrected).
    nbins : int, optional
        Phase bins per period (default ``clip(period in clocks, 16, 256)``).
    extra_rowclocks : int, optional
        Row overhead in 10 us clocks (see the timing model; default 13).
    frameclocks : int, optional
        Clocks per frame (default ``ny * (nx // 4 + extra_rowclocks)``).
    nresets_between_ints : int, optional
        Reset frames between integrations (default 1).
    rcond : float, optional
        Waveform modes whose normal-equation eigenvalue is below ``rcond`` times the largest
        are not measurable (absorbed by the per-pixel lines) and are left uncorrected.

    Returns
    -------
    dict
        ``{frequency_Hz: amplitude_DN}``: half the peak-to-peak of each subtracted waveform.
    """
    if data.ndim != 4:
        raise ValueError(f"ramp data must be 4-D (nints, ngroups, ny, nx), found shape {data.shape}")
    nints, ngroups, ny, nx = data.shape
    if groupdq is None:
        groupdq = np.zeros((1, 1, 1, 1), dtype=np.uint8)
        groupdq = np.broadcast_to(groupdq, data.shape)
    elif groupdq.shape != data.shape:
        raise ValueError(f"groupdq shape mismatch: expected {data.shape}, found {groupdq.shape}")
    rowclocks = nx // 4 + int(extra_rowclocks)
    if frameclocks is None:
        frameclocks = ny * rowclocks
    out = {}
    if ngroups < 3:  # a line through 2 groups leaves no residual to measure
        return out
    nchunks = max(1, numba.get_num_threads())
    for f in frequencies:
        freq = float(EMI_FREQUENCIES_HZ[f]) if isinstance(f, str) else float(f)
        fclk = freq * CLOCK_S
        nb = int(nbins) if nbins else int(np.clip(round(1.0 / fclk), 16, 256))
        delta = (int(frameclocks) * fclk) % 1.0
        edges, table = _bin_table(nb, ngroups, delta)
        timing = (int(nresets_between_ints), int(frameclocks), int(rowclocks), fclk)
        A, rhs, counts, nfull, u1f, u2f = _normal_equations(data, groupdq, nb, edges, table,
                                                            *timing, nchunks)
        A = _add_full_pixels(A, nfull, table, u1f, u2f)
        wave = _solve_waveform(A, rhs, counts, rcond)
        _subtract(data, wave, edges, table, *timing)
        out[freq] = 0.5 * float(wave.max() - wave.min())
    return out
