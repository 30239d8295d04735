"""The imaging gwcs (detector -> v2v3 -> world) and its FITS SIP approximation."""
from __future__ import annotations

__all__ = ["imaging_wcs", "fits_sip_header", "WCS_HEADER_PREFIXES", "strip_wcs_keywords"]

#: SCI-header keywords of a FITS WCS, replaced by the SIP approximation
WCS_HEADER_PREFIXES = ("WCSAXES", "CRPIX", "CRVAL", "CTYPE", "CUNIT", "CDELT", "PC1_", "PC2_",
                       "CD1_", "CD2_", "A_", "B_", "AP_", "BP_", "LONPOLE", "LATPOLE",
                       "SIPMXERR", "SIPIVERR")


def imaging_wcs(distortion, sky, shape, subarray=None):
    """Assemble the imaging gwcs.

    Parameters
    ----------
    distortion : astropy.modeling.Model
        Full-frame detector pixels -> (v2, v3) arcsec.
    sky : astropy.modeling.Model
        (v2, v3) arcsec -> (ra, dec) deg (:func:`steps.assign_wcs.pointing.v23tosky`).
    shape : tuple of int
        ``(ny, nx)`` of the science array.
    subarray : astropy.modeling.Model, optional
        Subarray -> full-frame pixel shift, prepended to ``distortion``.

    Returns
    -------
    gwcs.WCS
        Frames ``detector`` (pixels, 0-based), ``v2v3`` (arcsec), ``world`` (ICRS, deg);
        ``bounding_box`` ``((-0.5, nx - 0.5), (-0.5, ny - 0.5))``.
    """
    import astropy.units as u
    from astropy.coordinates import ICRS
    from gwcs import coordinate_frames as cf
    from gwcs.wcs import WCS

    ny, nx = (int(n) for n in shape)
    det2v = distortion if subarray is None else subarray | distortion
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), axes_names=("x", "y"),
                          unit=(u.pix, u.pix))
    v2v3 = cf.Frame2D(name="v2v3", axes_order=(0, 1), axes_names=("v2", "v3"),
                      unit=(u.arcsec, u.arcsec))
    world = cf.CelestialFrame(reference_frame=ICRS(), name="world", axes_names=("lon", "lat"),
                              unit=(u.deg, u.deg))
    wcs = WCS([(detector, det2v), (v2v3, sky), (world, None)])
    wcs.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return wcs


def fits_sip_header(wcs, *, max_pix_error=0.01, degree=None, max_inv_pix_error=0.01,
                    inv_degree=None, npoints=12):
    """FITS TAN-SIP approximation of a gwcs over its bounding box.

    Parameters
    ----------
    wcs : gwcs.WCS
    max_pix_error, max_inv_pix_error : float
        Largest allowed error (pixels) of the forward / inverse fit.
    degree, inv_degree : int, optional
        Polynomial degree; None tries 1..6 and keeps the lowest that meets the error.
    npoints : int
        Points per axis of the fitting grid.

    Returns
    -------
    astropy.io.fits.Header
        CTYPE 'RA---TAN-SIP' / 'DEC--TAN-SIP', CRPIX, CRVAL, CD, A_*, B_*, AP_*, BP_*,
        SIPMXERR, SIPIVERR (achieved errors, pixels).
    """
    degree = range(1, 7) if degree is None else degree
    inv_degree = range(1, 7) if inv_degree is None else inv_degree
    hdr = wcs.to_fits_sip(max_pix_error=max_pix_error, degree=degree,
                          max_inv_pix_error=max_inv_pix_error, inv_degree=inv_degree,
                          npoints=npoints)
    for key in ("NAXIS", "NAXIS1", "NAXIS2"):
        hdr.remove(key, ignore_missing=True)
    return hdr


def strip_wcs_keywords(header):
    """Remove FITS WCS keywords (in place) so a new WCS does not mix with an old one."""
    for key in list(header.keys()):
        if key.startswith(WCS_HEADER_PREFIXES):
            header.remove(key, ignore_missing=True, remove_all=True)
    return header
