"""Sky matching of overlapping images (the reference pipeline's ``skymatch`` algorithm).

Arrays and WCS objects in, sky levels out; no files, no Product.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("webbcal.step.skymatch")


@dataclass
class SkyImage:
    """One image for sky matching.

    Attributes
    ----------
    data : numpy.ndarray
        2-D surface brightness (e.g. MJy/sr).
    good : numpy.ndarray of bool
        Pixels usable for sky statistics.
    wcs : callable
        ``wcs(x, y) -> (ra, dec)`` in deg, with ``wcs.invert(ra, dec) -> (x, y)`` (gwcs).
    name : str
    """

    data: np.ndarray
    good: np.ndarray
    wcs: object
    name: str = ""


def sky_statistic(values, skystat="mode", lower=None, upper=None, nclip=5, lsigma=4.0,
                  usigma=4.0, binwidth=0.1):
    """Sky statistic of pixel values, as jwst's ``SkyStats``.

    Parameters
    ----------
    values : numpy.ndarray
        Pixel values (any unit).
    skystat : {'mode', 'median', 'mean', 'midpt'}
        Statistic after clipping; 'mode' is the peak of a histogram of ``binwidth`` x sigma bins
        refined by a parabola; 'midpt' is the median.
    lower, upper : float or None
        Values outside are ignored (same unit as ``values``).
    nclip : int
        Sigma-clipping iterations.
    lsigma, usigma : float
        Lower / upper clipping limits (sigma).
    binwidth : float
        Histogram bin width in units of the clipped standard deviation ('mode').

    Returns
    -------
    value : float
        NaN when no pixels remain.
    npix : int
        Pixels used.
    """
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if lower is not None:
        v = v[v >= lower]
    if upper is not None:
        v = v[v <= upper]
    for _ in range(int(nclip)):
        if v.size < 3:
            break
        c, s = np.median(v), np.std(v)
        if s == 0:
            break
        keep = (v >= c - lsigma * s) & (v <= c + usigma * s)
        if keep.all():
            break
        v = v[keep]
    if v.size == 0:
        return np.nan, 0
    stat = skystat.lower()
    if stat == "mean":
        return float(np.mean(v)), v.size
    if stat in ("median", "midpt"):
        return float(np.median(v)), v.size
    if stat != "mode":
        raise ValueError(f"skystat={skystat!r}: expected mode, median, mean or midpt")
    s = np.std(v)
    if s == 0 or v.size < 10:
        return float(np.median(v)), v.size
    width = binwidth * s
    lo, hi = v.min(), v.max()
    nb = int(min(max((hi - lo) / width, 1), 100000))
    hist, edges = np.histogram(v, bins=nb, range=(lo, hi))
    # smooth with a 1-sigma-wide box so the peak of a noisy histogram is stable
    k = max(int(round(1.0 / binwidth)), 1)
    sm = np.convolve(hist, np.ones(k) / k, mode="same")
    j = int(np.argmax(sm))
    centers = 0.5 * (edges[:-1] + edges[1:])
    if 0 < j < nb - 1:
        y0, y1, y2 = sm[j - 1], sm[j], sm[j + 1]
        den = y0 - 2 * y1 + y2
        off = 0.5 * (y0 - y2) / den if den != 0 else 0.0
        return float(centers[j] + np.clip(off, -1, 1) * width), v.size
    return float(centers[j]), v.size


def overlap_mask(a, b, stride=1):
    """Pixels of ``a`` (on a ``stride`` grid) whose sky position falls on a good pixel of ``b``.

    The footprints are compared on the sky through the two WCSs (the common tangent plane of
    the reference pipeline reduces, for overlap membership, to this pixel-level test).
    """
    ny, nx = a.data.shape
    yy, xx = np.mgrid[0:ny:stride, 0:nx:stride]
    sel = a.good[yy, xx]
    xs, ys = xx[sel].astype(float), yy[sel].astype(float)
    mask = np.zeros(a.data.shape, bool)
    if xs.size == 0:
        return mask
    ra, dec = a.wcs(xs, ys, with_bounding_box=False)
    bx, by = b.wcs.invert(ra, dec, with_bounding_box=False)
    bx, by = np.asarray(bx), np.asarray(by)
    bny, bnx = b.data.shape
    ok = np.isfinite(bx) & np.isfinite(by)
    ix = np.full(bx.shape, -1)
    iy = np.full(by.shape, -1)
    ix[ok] = np.round(bx[ok]).astype(int)
    iy[ok] = np.round(by[ok]).astype(int)
    ok &= (ix >= 0) & (ix < bnx) & (iy >= 0) & (iy < bny)
    ok[ok] = b.good[iy[ok], ix[ok]]
    mask[ys[ok].astype(int), xs[ok].astype(int)] = True
    return mask


def match_sky(images, skymethod="match", match_down=True, stat_kw=None, stride=1, min_overlap=50):
    """Sky levels of overlapping images.

    Parameters
    ----------
    images : list of SkyImage
    skymethod : {'match', 'global', 'local', 'global+match'}
        'local': each image's own sky statistic; 'global': the minimum of the local skies,
        the same for all; 'match': relative levels that best equalise the sky in the overlaps
        (least squares over all overlapping pairs, weighted by overlap size); 'global+match':
        'match' then the global sky of the matched images added to all.
    match_down : bool
        'match': the image with the lowest sky gets level 0 and the others positive levels
        (matched down to it); False: the highest gets 0 (levels <= 0, matched up).
    stat_kw : dict
        Keywords of :func:`sky_statistic`.
    stride : int
        Pixel sampling of the overlap computation.
    min_overlap : int
        Pairs overlapping on fewer pixels are ignored.

    Returns
    -------
    levels : numpy.ndarray
        Sky level of each image (data unit): subtract it to match/remove the sky.
    info : dict
        ``pairs``: list of (i, j, s_i, s_j, npix); ``unmatched``: images in no overlap.
    """
    stat_kw = dict(stat_kw or {})
    n = len(images)
    method = skymethod.lower()
    if method not in ("match", "global", "local", "global+match"):
        raise ValueError(f"skymethod={skymethod!r}: expected match, global, local or global+match")
    local = np.array([sky_statistic(im.data[im.good], **stat_kw)[0] for im in images])
    info = {"pairs": [], "unmatched": [], "local": local}
    if method == "local":
        return local, info
    if method == "global":
        return np.full(n, np.nanmin(local)), info

    levels = np.zeros(n)
    if n > 1:
        rows, rhs, wts = [], [], []
        for i in range(n):
            for j in range(i + 1, n):
                mi = overlap_mask(images[i], images[j], stride)
                if mi.sum() < min_overlap:
                    continue
                mj = overlap_mask(images[j], images[i], stride)
                if mj.sum() < min_overlap:
                    continue
                si, ni = sky_statistic(images[i].data[mi], **stat_kw)
                sj, nj = sky_statistic(images[j].data[mj], **stat_kw)
                if not (np.isfinite(si) and np.isfinite(sj)):
                    continue
                row = np.zeros(n)
                row[i], row[j] = 1.0, -1.0
                rows.append(row)
                rhs.append(si - sj)
                wts.append(np.sqrt(min(ni, nj)))
                info["pairs"].append((i, j, si, sj, int(min(ni, nj))))
        connected = set()
        for i, j, *_ in info["pairs"]:
            connected.update((i, j))
        info["unmatched"] = [k for k in range(n) if k not in connected]
        if rows:
            a = np.array(rows) * np.array(wts)[:, None]
            b = np.array(rhs) * np.array(wts)
            # gauge: the least-squares solution of the differences is defined up to a constant per
            # connected group; lstsq gives the minimum-norm one, fixed below by match_down.
            sol, *_ = np.linalg.lstsq(a, b, rcond=None)
            levels = sol
        for comp in _components(n, [(i, j) for i, j, *_ in info["pairs"]]):
            comp = list(comp)
            ref = np.min(levels[comp]) if match_down else np.max(levels[comp])
            levels[comp] = levels[comp] - ref
    if method == "global+match":
        matched = [sky_statistic(im.data[im.good] - lev, **stat_kw)[0] for im, lev in zip(images, levels)]
        levels = levels + np.nanmin(matched)
    return levels, info


def _components(n, edges):
    parent = list(range(n))

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in edges:
        parent[find(i)] = find(j)
    groups = {}
    for k in range(n):
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())
