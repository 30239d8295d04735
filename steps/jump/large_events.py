"""Large cosmic-ray events: snowballs (near-IR) and showers (MIRI), flagged after two-point detection.

Plain arrays in, a new group DQ out. The semantics follow the reference pipeline (stcal
``flag_large_events`` / ``find_faint_extended``, jwst parameter names), re-implemented with
connected regions (:mod:`steps.jump.labeling`) and image moments instead of OpenCV contours.

Snowballs (:func:`flag_snowballs`, ``expand_large_events``)
    For every integration and group ``g >= 1``:

    * jump regions: 8-connected regions of JUMP_DET pixels, holes filled (the saturated core of a
      snowball has no jump flag, OpenCV's external contour encloses it too), with a filled area of
      at least ``min_jump_area`` pixels;
    * cores: 8-connected regions of pixels newly SATURATED in ``g`` (not in ``g - 1``), area at
      least ``min_sat_area``; also cores newly saturated in ``g + 1``;
    * a jump region is a snowball when a core centroid lies within its major (full) axis of its
      centre, as the reference tests it, or when its centre is within ``edge_size`` pixels of
      the detector edge (the core may be off the detector), or always when
      ``sat_required_snowball`` is False;
    * shape: with ``use_ellipses`` an ellipse with the region's second moments (semi-axes
      ``2 sqrt(lambda)``, exact for a filled ellipse), otherwise the enclosing circle about the
      centroid; expanded by ``expand_factor`` as the reference does (minor axis times the factor,
      the major axis grown by the same number of pixels), semi-axes capped at
      ``max_extended_radius``; JUMP_DET set inside, in group ``g`` only, except on SATURATED or
      DO_NOT_USE pixels;
    * saturation extension: cores of this group (inside a snowball) whose minor full width exceeds
      ``min_sat_radius_extend`` get SATURATED in an ellipse grown by ``sat_expand`` pixels of
      radius, in ``g`` and every later group of the integration (JUMP_DET removed there);
    * ``mask_snowball_core_next_int``: the (unexpanded) cores are flagged JUMP_DET in groups
      ``1 .. round(snowball_time_masked_next_int / tgroup) - 1`` of the next integration.

Showers (:func:`flag_showers`, ``find_showers``)
    * first differences in electrons, a group being unusable when DO_NOT_USE, SATURATED or
      JUMP_DET; per pixel the median ``M`` of all usable differences (of all integrations;
      with ``nints >= minimum_sigclip_groups`` per difference across integrations, median and MAD
      standard deviation) and ``sigma = sqrt(|M| + (rn_CDS gain)^2 / nframes)``;
    * per group: ``|delta - M| / sigma`` with unusable pixels and already flagged (JUMP, SATURATED,
      DO_NOT_USE) pixels masked, smoothed with the normalised binary ring kernel of astropy's
      ``Ring2DKernel(extend_inner_radius, extend_outer_radius)`` (NaN interpolated, masked pixels
      stay masked); regions above ``extend_snr_threshold`` with at least ``extend_min_area``
      pixels are showers;
    * after all groups are searched, each shower's ellipse (second moments) expanded by
      ``extend_ellipse_expand_ratio`` is flagged JUMP_DET in its group and the next
      ``int(time_masked_after_shower // tgroup)`` groups (not on SATURATED pixels);
    * ``max_shower_amplitude`` (DN/s; DN/group when no ``tgroup`` is given): a pixel whose mean
      first difference (usable groups) changes by more than that through the shower flags, or
      loses every usable difference, gets its pre-shower flags back (as the reference does).

Deliberate differences from the reference
-----------------------------------------
* Saturation is extended only around cores that belong to a snowball (the reference extends
  every newly saturated region of sufficient width, which also grows the saturation of
  ordinary bright stars group after group).
* ``sat_expand`` is added to the core's semi-axes (the documented "pixels added to the radius").
* Areas are pixel counts of the filled region (OpenCV's contour area through pixel centres is a
  little smaller); ``max_extended_radius`` caps semi-axes (the reference caps full axes).
* Flags are OR-ed (the reference overwrites the DQ value with SATURATED when extending cores).
* With ``nints >= minimum_sigclip_groups`` the shower noise is a median / MAD estimate across
  integrations instead of astropy's 5-sigma clipped statistics.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from numba import njit

from steps.ramp_fit.ols import resolve_cores, run_rows

from .labeling import fill_holes, label_regions

__all__ = ["flag_snowballs", "flag_showers", "ring_kernel"]

DO_NOT_USE = 1
SATURATED = 2
JUMP_DET = 4
REFERENCE_PIXEL = 1 << 31


# --------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------
def _region_pixels(lab, sl, k, fill=True):
    """Pixel coordinates (ys, xs) of region ``k`` of ``lab`` in slice ``sl``, holes filled."""
    sub = lab[sl] == k
    if fill:
        sub = fill_holes(sub)
    ys, xs = np.nonzero(sub)
    return ys + sl[0].start, xs + sl[1].start


def _fit_shape(ys, xs, use_ellipses=True):
    """Shape of a pixel set: (cy, cx, a, b, theta) with semi-axes a >= b (pixels), theta rad.

    Ellipse: second moments (each pixel a unit square: + 1/12), semi-axes 2 sqrt(eigenvalue).
    Circle: centroid and largest pixel-centre distance + 0.5 pixel.
    """
    cy = float(ys.mean())
    cx = float(xs.mean())
    dy = ys - cy
    dx = xs - cx
    if not use_ellipses:
        r = float(np.sqrt((dy * dy + dx * dx).max())) + 0.5
        return cy, cx, r, r, 0.0
    vxx = float((dx * dx).mean()) + 1.0 / 12.0
    vyy = float((dy * dy).mean()) + 1.0 / 12.0
    vxy = float((dx * dy).mean())
    t = 0.5 * (vxx + vyy)
    d = math.sqrt(0.25 * (vxx - vyy) ** 2 + vxy * vxy)
    l1 = t + d
    l2 = max(t - d, 1.0 / 12.0)
    theta = 0.5 * math.atan2(2.0 * vxy, vxx - vyy)
    return cy, cx, 2.0 * math.sqrt(l1), 2.0 * math.sqrt(l2), theta


def _expand_by_ratio(a, b, factor, cap):
    """The reference's expansion: minor * factor, the major grown by the same pixels; capped."""
    grow = (factor - 1.0) * b
    return min(a + grow, cap), min(b * factor, cap)


def _ellipse_window(cy, cx, a, b, theta, ny, nx):
    """((row slice, col slice), bool mask) of the filled ellipse, clipped to the image; or None."""
    r = math.ceil(max(a, b)) + 1
    y0 = max(int(math.floor(cy - r)), 0)
    y1 = min(int(math.ceil(cy + r)) + 1, ny)
    x0 = max(int(math.floor(cx - r)), 0)
    x1 = min(int(math.ceil(cx + r)) + 1, nx)
    if y0 >= y1 or x0 >= x1:
        return None
    yy = np.arange(y0, y1, dtype=np.float64)[:, None] - cy
    xx = np.arange(x0, x1, dtype=np.float64)[None, :] - cx
    c, s = math.cos(theta), math.sin(theta)
    u = xx * c + yy * s
    v = -xx * s + yy * c
    a = max(a, 0.5)
    b = max(b, 0.5)
    inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    return (slice(y0, y1), slice(x0, x1)), inside


def _set_flag(plane, window, bit, skip=SATURATED | DO_NOT_USE):
    """OR ``bit`` into ``plane`` inside ``window`` except where ``plane & skip``."""
    if window is None:
        return
    sl, inside = window
    sub = plane[sl]
    sel = inside & ((sub & skip) == 0)
    sub[sel] |= np.uint8(bit)


def _regions(mask, min_area, fill=True, bbox_prefilter=True):
    """Regions (8-connected) of ``mask`` with (filled) pixel count >= ``min_area``.

    Returns a list of (ys, xs) coordinate arrays.
    """
    lab, n, objs = label_regions(mask)
    if n == 0:
        return []
    out = []
    if bbox_prefilter:
        # the filled area cannot exceed the bounding box; most regions (single cosmic rays) fail
        cand = [k for k, sl in enumerate(objs, 1)
                if (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start) >= min_area]
    else:
        cand = range(1, n + 1)
    for k in cand:
        ys, xs = _region_pixels(lab, objs[k - 1], k, fill=fill)
        if ys.size >= min_area:
            out.append((ys, xs))
    return out


# --------------------------------------------------------------------------------------------
# snowballs
# --------------------------------------------------------------------------------------------
def flag_snowballs(gdq, *, min_jump_area=15.0, min_sat_area=1.0, expand_factor=2.0,
                   use_ellipses=False, sat_required_snowball=True, min_sat_radius_extend=2.5,
                   sat_expand=2, edge_size=25, max_extended_radius=200,
                   mask_snowball_core_next_int=True, snowball_time_masked_next_int=4000,
                   tgroup=None):
    """Flag snowballs: expand JUMP_DET around large jump regions with a saturated core.

    Parameters
    ----------
    gdq : ndarray, uint8, shape (nints, ngroups, ny, nx)
        Group DQ after two-point jump detection. Not modified.
    min_jump_area : float
        Smallest jump region (filled, pixels) that can be a snowball.
    min_sat_area : float
        Smallest newly saturated core (pixels).
    expand_factor : float
        Expansion of the fitted circle / ellipse (minor axis times this; the major axis grows by
        the same number of pixels).
    use_ellipses : bool
        Fit ellipses (second moments) instead of enclosing circles.
    sat_required_snowball : bool
        Require a saturated core (this group or the next) near the jump region's centre.
    min_sat_radius_extend : float
        Cores whose minor full width (pixels) exceeds this get their saturation extended.
    sat_expand : int
        Pixels added to the core's radius when extending saturation.
    edge_size : int
        Jump regions centred within this many pixels of an edge need no core.
    max_extended_radius : float
        Largest semi-axis (pixels) of any expanded shape.
    mask_snowball_core_next_int : bool
        Flag the cores JUMP_DET in the next integration.
    snowball_time_masked_next_int : float
        Time (s) over which the cores are flagged in the next integration (needs ``tgroup``).
    tgroup : float, optional
        Group time, s.

    Returns
    -------
    gdq : ndarray, uint8
        New group DQ.
    nsnowballs : int
        Snowballs found.
    """
    gdq = np.array(gdq, dtype=np.uint8, copy=True)
    if gdq.ndim != 4:
        raise ValueError(f"gdq must be 4-D, got shape {gdq.shape}")
    nints, ngroups, ny, nx = gdq.shape
    persist = np.zeros((nints, ny, nx), dtype=bool)
    any_persist = False
    nsnow = 0
    sat_bit = np.uint8(SATURATED)
    jump_bit = np.uint8(JUMP_DET)
    for i in range(nints):
        for g in range(1, ngroups):
            plane = gdq[i, g]
            jump = (plane & jump_bit) != 0
            if np.count_nonzero(jump) == 0:
                continue
            jumps = _regions(jump, min_jump_area, fill=True)
            if not jumps:
                continue
            sat_now = (plane & sat_bit) != 0
            new_sat = sat_now & ((gdq[i, g - 1] & sat_bit) == 0)
            cores = _regions(new_sat, min_sat_area, fill=True) if new_sat.any() else []
            core_c = np.array([[ys.mean(), xs.mean()] for ys, xs in cores]).reshape(-1, 2)
            next_c = np.zeros((0, 2))
            if sat_required_snowball and g < ngroups - 1:
                nxt = ((gdq[i, g + 1] & sat_bit) != 0) & ~sat_now
                if nxt.any():
                    ncores = _regions(nxt, min_sat_area, fill=True)
                    next_c = np.array([[ys.mean(), xs.mean()] for ys, xs in ncores]).reshape(-1, 2)
            used_core = np.zeros(len(cores), dtype=bool)
            snowballs = []
            for ys, xs in jumps:
                shp = _fit_shape(ys, xs, use_ellipses)
                cy, cx, a, b, th = shp
                reach = 2.0 * a  # the reference: distance to the centre < full major axis
                near = np.hypot(core_c[:, 0] - cy, core_c[:, 1] - cx) < reach
                near_next = np.hypot(next_c[:, 0] - cy, next_c[:, 1] - cx) < reach
                edge = (cy < edge_size or cx < edge_size or cy > ny - 1 - edge_size
                        or cx > nx - 1 - edge_size)
                if sat_required_snowball and not (near.any() or near_next.any() or edge):
                    continue
                used_core |= near
                snowballs.append(shp)
            nsnow += len(snowballs)
            # extend the saturation of the cores of snowballs (this and later groups)
            for k in np.nonzero(used_core)[0]:
                ys, xs = cores[k]
                cy, cx, a, b, th = _fit_shape(ys, xs, True)
                if 2.0 * b <= min_sat_radius_extend:
                    continue
                win = _ellipse_window(cy, cx, min(a + sat_expand, max_extended_radius),
                                      min(b + sat_expand, max_extended_radius), th, ny, nx)
                if win is not None:
                    sl, inside = win
                    sub = gdq[i, g:, sl[0], sl[1]]
                    sub[:, inside] = (sub[:, inside] | sat_bit) & ~jump_bit
                if mask_snowball_core_next_int and i < nints - 1:
                    core_win = _ellipse_window(cy, cx, a, b, th, ny, nx)
                    if core_win is not None:
                        persist[i][core_win[0]] |= core_win[1]
                        any_persist = True
            # expand the jump flags of the snowballs (this group only)
            for cy, cx, a, b, th in snowballs:
                if use_ellipses:
                    a2, b2 = _expand_by_ratio(a, b, expand_factor, max_extended_radius)
                else:
                    a2 = b2 = min(a * expand_factor, max_extended_radius)
                _set_flag(plane, _ellipse_window(cy, cx, a2, b2, th, ny, nx), JUMP_DET)
    if any_persist and tgroup:
        ngf = int(round(snowball_time_masked_next_int / float(tgroup)))
        last = min(ngf, ngroups)
        for i in range(1, nints):
            if last > 1 and persist[i - 1].any():
                sub = gdq[i, 1:last]
                sel = persist[i - 1][None] & ((sub & (SATURATED | DO_NOT_USE)) == 0)
                sub[sel] |= jump_bit
    return gdq, nsnow


# --------------------------------------------------------------------------------------------
# showers
# --------------------------------------------------------------------------------------------
def ring_kernel(inner, outer):
    """Binary ring footprint as astropy's ``Ring2DKernel(inner, outer)``: inner <= r <= inner + outer.

    (astropy's second argument is the ring width, and the reference passes
    ``extend_outer_radius`` there.) Returns a bool array of odd size.
    """
    rout = inner + outer
    h = int(math.ceil(rout))
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    r = np.hypot(yy, xx)
    k = (r >= inner) & (r <= rout)
    return k


@njit(cache=True, nogil=True)
def _median_diffs_kernel(data, gdq, gain, bad, out):
    nints, ngroups, ny, nx = data.shape
    buf = np.empty(max(nints * (ngroups - 1), 1), dtype=np.float64)
    for y in range(ny):
        for x in range(nx):
            gn = np.float64(gain[y, x])
            n = 0
            for i in range(nints):
                okp = (gdq[i, 0, y, x] & bad) == 0
                for k in range(1, ngroups):
                    okc = (gdq[i, k, y, x] & bad) == 0
                    if okp and okc:
                        v = (np.float64(data[i, k, y, x]) - np.float64(data[i, k - 1, y, x])) * gn
                        # insertion into sorted buffer
                        j = n - 1
                        while j >= 0 and buf[j] > v:
                            buf[j + 1] = buf[j]
                            j -= 1
                        buf[j + 1] = v
                        n += 1
                    okp = okc
            if n == 0:
                out[y, x] = np.nan
            elif n % 2 == 1:
                out[y, x] = buf[n // 2]
            else:
                out[y, x] = 0.5 * (buf[n // 2 - 1] + buf[n // 2])


@njit(cache=True, nogil=True)
def _median_rows(y0, y1, data, gdq, gain, bad, out):
    """Rows y0:y1 of :func:`_median_diffs_kernel` (for the thread pool)."""
    _median_diffs_kernel(data[:, :, y0:y1], gdq[:, :, y0:y1], gain[y0:y1], bad, out[y0:y1])


@njit(cache=True, nogil=True)
def _ratio_prefix_rows(y0, y1, cur, prev, qcur, qprev, pixbad, gain, med, sigma, bad, pv, pc):
    """Row prefix sums of the masked ``|delta - M| / sigma`` (pv) and of its validity (pc)."""
    ny, nx = cur.shape
    for y in range(y0, y1):
        pv[y, 0] = 0.0
        pc[y, 0] = 0.0
        for x in range(nx):
            v = 0.0
            c = 0.0
            if (qcur[y, x] & bad) == 0 and (qprev[y, x] & bad) == 0 and not pixbad[y, x]:
                r = abs((np.float64(cur[y, x]) - np.float64(prev[y, x])) * gain[y, x] - med[y, x]) / sigma[y, x]
                if np.isfinite(r):
                    v = r
                    c = 1.0
            pv[y, x + 1] = pv[y, x] + v
            pc[y, x + 1] = pc[y, x] + c


@njit(cache=True, nogil=True)
def _smooth_threshold_rows(y0, y1, pv, pc, rdy, rx0, rx1, thr, out):
    """out[y, x] = 1 where the ring-smoothed ratio (NaN-interpolated; masked pixels excluded) > thr."""
    ny = pv.shape[0]
    nx = pv.shape[1] - 1
    nr = rdy.shape[0]
    for y in range(y0, y1):
        for x in range(nx):
            out[y, x] = 0
            if pc[y, x + 1] - pc[y, x] <= 0.0:
                continue
            num = 0.0
            den = 0.0
            for k in range(nr):
                yy = y + rdy[k]
                if yy < 0 or yy >= ny:
                    continue
                a = x + rx0[k]
                b = x + rx1[k] + 1
                if a < 0:
                    a = 0
                if b > nx:
                    b = nx
                if b <= a:
                    continue
                num += pv[yy, b] - pv[yy, a]
                den += pc[yy, b] - pc[yy, a]
            if den > 0.0 and num / den > thr:
                out[y, x] = 1


def _runs(footprint):
    """(dy, x0, x1) int arrays of the horizontal runs of a centred bool footprint."""
    kh, kw = footprint.shape
    hy, hx = kh // 2, kw // 2
    dys, x0s, x1s = [], [], []
    for r in range(kh):
        padded = np.concatenate(([False], footprint[r], [False]))
        edges = np.flatnonzero(padded[1:] != padded[:-1])
        for s, e in zip(edges[0::2], edges[1::2]):
            dys.append(r - hy)
            x0s.append(int(s) - hx)
            x1s.append(int(e) - 1 - hx)
    return (np.array(dys, dtype=np.int64), np.array(x0s, dtype=np.int64),
            np.array(x1s, dtype=np.int64))


def _mean_diff_dn(data_i, gdq_i, bad):
    """Mean of usable first differences per pixel (DN), NaN when none. data_i (ngroups, m)."""
    ok = (gdq_i & bad) == 0
    okd = ok[1:] & ok[:-1]
    d = np.diff(data_i.astype(np.float64), axis=0)
    n = okd.sum(axis=0)
    s = np.where(okd, d, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def flag_showers(data, gdq, gain, readnoise, *, pixeldq=None, nframes=1, tgroup=None,
                 extend_snr_threshold=1.2, extend_min_area=90, extend_inner_radius=1.0,
                 extend_outer_radius=2.6, extend_ellipse_expand_ratio=1.1,
                 time_masked_after_shower=15.0, max_shower_amplitude=4.0,
                 max_extended_radius=200, minimum_sigclip_groups=100, maximum_cores=1):
    """Flag showers: faint extended events found in smoothed group-difference S/N images.

    Parameters
    ----------
    data : ndarray, float32, shape (nints, ngroups, ny, nx)
        Ramp data, DN.
    gdq : ndarray, uint8, same shape
        Group DQ after two-point jump detection. Not modified.
    gain : ndarray (ny, nx) or float
        Gain, e/DN.
    readnoise : ndarray (ny, nx) or float
        CDS read noise, DN.
    pixeldq : ndarray (ny, nx), optional
        Pixel DQ; DO_NOT_USE and REFERENCE_PIXEL pixels are not used.
    nframes : int
        Frames averaged per group.
    tgroup : float, optional
        Group time, s (needed for ``time_masked_after_shower`` and to read
        ``max_shower_amplitude`` in DN/s).
    extend_snr_threshold : float
        Threshold on the smoothed ``|delta - M| / sigma`` image.
    extend_min_area : int
        Smallest shower region, pixels.
    extend_inner_radius, extend_outer_radius : float
        Ring kernel, as astropy ``Ring2DKernel(inner, outer)`` (pixels inner..inner+outer).
    extend_ellipse_expand_ratio : float
        Expansion of the fitted ellipse.
    time_masked_after_shower : float
        Time after a shower over which later groups are flagged too, s.
    max_shower_amplitude : float
        Largest change of a pixel's mean first difference that shower flags may cause, DN/s
        (DN/group without ``tgroup``); larger changes restore the pixel's pre-shower flags.
    max_extended_radius : float
        Largest semi-axis (pixels) of a flagged ellipse.
    minimum_sigclip_groups : int
        From this many integrations the noise is estimated across integrations per difference.
    maximum_cores : int or {'none', 'quarter', 'half', 'all'}
        Threads; the result does not depend on it.

    Returns
    -------
    gdq : ndarray, uint8
        New group DQ.
    nshowers : int
        Showers found.
    """
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"data must be 4-D, got shape {data.shape}")
    nints, ngroups, ny, nx = data.shape
    ingdq = np.ascontiguousarray(gdq, dtype=np.uint8)
    out = ingdq.copy()
    if ngroups < 2:
        return out, 0
    data = np.ascontiguousarray(data, dtype=np.float32)
    gain = np.array(np.broadcast_to(gain, (ny, nx)), dtype=np.float64)
    rn_e = np.array(np.broadcast_to(readnoise, (ny, nx)), dtype=np.float64) * gain
    bad = np.uint8(DO_NOT_USE | SATURATED | JUMP_DET)
    pix_bad = np.zeros((ny, nx), dtype=bool)
    if pixeldq is not None:
        pdq = np.asarray(pixeldq, dtype=np.uint32)
        pix_bad = (pdq & np.uint32(DO_NOT_USE | REFERENCE_PIXEL)) != 0
    pix_bad |= ~(gain > 0)
    # total usable differences (the reference needs a few)
    dnu_planes = sum(bool(np.all(ingdq[i, k] & DO_NOT_USE)) for i in range(nints) for k in range(ngroups))
    if nints * (ngroups - 1) - dnu_planes < 2:
        return out, 0

    per_int = nints >= minimum_sigclip_groups
    nthreads = resolve_cores(maximum_cores)
    if not per_int:
        med = np.empty((ny, nx), dtype=np.float64)
        run_rows(_median_rows, ny, nthreads, data, ingdq,
                 np.ascontiguousarray(np.where(gain > 0, gain, 0.0)), bad, med)
        sigma = np.sqrt(np.abs(med) + rn_e ** 2 / nframes)
    rdy, rx0, rx1 = _runs(ring_kernel(extend_inner_radius, extend_outer_radius))
    pv = np.empty((ny, nx + 1), dtype=np.float64)
    pc = np.empty((ny, nx + 1), dtype=np.float64)
    det = np.empty((ny, nx), dtype=np.uint8)
    found = []  # (i, g, cy, cx, a, b, theta)
    for i in range(nints):
        first_good = 0
        for k in range(ngroups):
            if not np.all(ingdq[i, k] & DO_NOT_USE):
                first_good = k
                break
        for g in range(first_good + 1, ngroups):
            if per_int:
                k = g - 1
                okd = ((ingdq[:, k] & bad) == 0) & ((ingdq[:, k + 1] & bad) == 0)
                d_all = (data[:, k + 1].astype(np.float64) - data[:, k]) * gain
                d_all[~okd] = np.nan
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    med = np.nanmedian(d_all, axis=0)
                    sigma = 1.4826 * np.nanmedian(np.abs(d_all - med), axis=0)
                sigma[~(sigma > 0)] = np.nan
            run_rows(_ratio_prefix_rows, ny, nthreads, data[i, g], data[i, g - 1], ingdq[i, g],
                     ingdq[i, g - 1], pix_bad, gain, np.ascontiguousarray(med, dtype=np.float64),
                     np.ascontiguousarray(sigma, dtype=np.float64), bad, pv, pc)
            run_rows(_smooth_threshold_rows, ny, nthreads, pv, pc, rdy, rx0, rx1,
                     float(extend_snr_threshold), det)
            if np.count_nonzero(det) < extend_min_area:
                continue
            for ys, xs in _regions(det, extend_min_area, fill=True):
                found.append((i, g) + _fit_shape(ys, xs, True))
    if not found:
        return out, 0
    nafter = int(time_masked_after_shower // tgroup) if tgroup else 0
    for i, g, cy, cx, a, b, th in found:
        a2, b2 = _expand_by_ratio(a, b, extend_ellipse_expand_ratio, max_extended_radius)
        win = _ellipse_window(cy, cx, a2, b2, th, ny, nx)
        for h in range(g, min(g + nafter, ngroups - 1) + 1):
            _set_flag(out[i, h], win, JUMP_DET, skip=SATURATED)
    # undo the shower flags of pixels whose mean difference they change too much
    max_dn = max_shower_amplitude * float(tgroup) if tgroup else max_shower_amplitude
    for i in range(nints):
        changed = np.any(out[i] != ingdq[i], axis=0)
        if not changed.any():
            continue
        yy, xx = np.nonzero(changed)
        d = data[i][:, yy, xx]
        before = _mean_diff_dn(d, ingdq[i][:, yy, xx], bad)
        after = _mean_diff_dn(d, out[i][:, yy, xx], bad)
        delta = np.abs(before - after)
        revert = ~np.isfinite(delta) | (delta > max_dn)
        if revert.any():
            ry, rx = yy[revert], xx[revert]
            out[i][:, ry, rx] = ingdq[i][:, ry, rx]
    return out, len(found)
