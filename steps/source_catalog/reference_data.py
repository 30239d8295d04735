"""Aperture parameters from an APCORR reference table, as the reference pipeline reads them.

The CRDS APCORR reference of an imaging mode holds, per filter and pupil (MIRI: filter and
subarray; FGS: all rows), rows of ``eefraction`` (encircled energy, 0-1), ``radius`` (pixels
of the detector), ``apcorr`` (factor from the background-subtracted aperture sum to the total
flux) and the local-background annulus ``skyin`` / ``skyout`` (pixels). jwst's
``source_catalog`` takes the rows whose ``round(100 * eefraction)`` equals ``aperture_ee1/2/3``,
divides radii and annulus by the image's pixel scale ratio (output / native, ``PXSCLRT``) and
multiplies the largest aperture's flux by its ``apcorr``.

Arrays in, a plain dict out; no files.
"""
from __future__ import annotations

import numpy as np

__all__ = ["select_apcorr_rows", "aperture_parameters"]


def _text(values):
    """Table string column as stripped upper-case str (FITS tables give bytes or str)."""
    return np.array([(v.decode() if isinstance(v, bytes) else str(v)).strip().upper() for v in values])


def select_apcorr_rows(table, instrument, filter_name=None, pupil=None, subarray=None):
    """Rows of an APCORR table for one instrument configuration (jwst's selection).

    Parameters
    ----------
    table : numpy structured array or astropy Table
        The ``APCORR`` extension.
    instrument : str
        INSTRUME: NIRCAM / NIRISS select on filter and pupil, MIRI on filter and subarray,
        FGS takes every row.
    filter_name, pupil, subarray : str or None
        FILTER, PUPIL, SUBARRAY of the image.

    Returns
    -------
    numpy structured array
        The selected rows.

    Raises
    ------
    ValueError
        Unknown instrument, missing column, or no row for the configuration (the message names
        the configuration).
    """
    instrument = str(instrument or "").strip().upper()
    names = {n.lower(): n for n in (table.dtype.names if hasattr(table, "dtype") and table.dtype.names
                                    else table.colnames)}
    if instrument in ("NIRCAM", "NIRISS"):
        selector = {"filter": filter_name, "pupil": pupil}
    elif instrument == "MIRI":
        selector = {"filter": filter_name, "subarray": subarray}
    elif instrument == "FGS":
        selector = {}
    else:
        raise ValueError(f"APCORR: instrument {instrument!r} is not an imaging instrument "
                         "(NIRCAM, NIRISS, MIRI, FGS)")
    keep = np.ones(len(table), bool)
    for key, value in selector.items():
        if key not in names:
            raise ValueError(f"APCORR table has no '{key}' column (columns {list(names.values())})")
        keep &= _text(table[names[key]]) == str(value or "").strip().upper()
    rows = np.asarray(table)[keep] if not hasattr(table, "colnames") else table[keep].as_array()
    if len(rows) == 0:
        what = ", ".join(f"{k.upper()}={v}" for k, v in selector.items())
        raise ValueError(f"APCORR reference has no rows for {what}")
    return rows


def aperture_parameters(rows, aperture_ee, pixel_scale_ratio=1.0):
    """Aperture radii, corrections and background annulus for ``aperture_ee`` (jwst).

    Parameters
    ----------
    rows : numpy structured array
        APCORR rows of one configuration (:func:`select_apcorr_rows`).
    aperture_ee : sequence of 3 int
        Encircled energies (%) of the three apertures, strictly increasing.
    pixel_scale_ratio : float
        Image pixel scale / native detector pixel scale (> 0); radii in image pixels are the
        reference's divided by it.

    Returns
    -------
    dict
        ``aperture_ee`` (3 int), ``radii`` (3 floats, image pixels), ``apcorr`` (3 floats),
        ``bkg_annulus`` (skyin, skyout in image pixels), and ``growth``: ``(radius, apcorr)``
        of the row with the largest radius at least 1 image pixel inside ``skyin`` and larger
        than the third aperture (None when there is none), for a correction measured on the
        image between the third aperture and that radius.

    Raises
    ------
    ValueError
        An ``aperture_ee`` value with no row or with several rows, or the rows' sky annulus is
        not unique.
    """
    ratio = float(pixel_scale_ratio)
    if not np.isfinite(ratio) or ratio <= 0:
        raise ValueError(f"pixel_scale_ratio must be > 0, got {pixel_scale_ratio!r}")
    ees = [int(e) for e in aperture_ee]
    percent = np.round(np.asarray(rows["eefraction"], float) * 100).astype(int)
    radii, corr = [], []
    for ee in ees:
        hit = np.flatnonzero(percent == ee)
        if hit.size == 0:
            valid = sorted(set(int(p) for p in percent))
            raise ValueError(f"APCORR reference has no row for an encircled energy of {ee} %; "
                             f"valid aperture_ee values: {valid}")
        if hit.size > 1:
            raise ValueError(f"APCORR reference has {hit.size} rows for an encircled energy of {ee} %")
        radii.append(float(rows["radius"][hit[0]]) / ratio)
        corr.append(float(rows["apcorr"][hit[0]]))
    skyin = np.unique(np.asarray(rows["skyin"], float))
    skyout = np.unique(np.asarray(rows["skyout"], float))
    if skyin.size != 1 or skyout.size != 1:
        raise ValueError("APCORR reference: expected one skyin and one skyout value for the "
                         f"configuration, found {skyin.tolist()} and {skyout.tolist()}")
    r_in, r_out = float(skyin[0]) / ratio, float(skyout[0]) / ratio
    all_r = np.asarray(rows["radius"], float) / ratio
    ok = (all_r <= r_in - 1.0) & (all_r > radii[-1]) & np.isfinite(np.asarray(rows["apcorr"], float))
    growth = None
    if ok.any():
        k = np.flatnonzero(ok)[np.argmax(all_r[ok])]
        growth = (float(all_r[k]), float(rows["apcorr"][k]))
    return {"aperture_ee": ees, "radii": radii, "apcorr": corr, "bkg_annulus": (r_in, r_out),
            "growth": growth}
