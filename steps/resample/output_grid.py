"""The output grid of a drizzled image: a tangent-plane (TAN) WCS covering all inputs.

Functions here take WCS objects (a ``gwcs.WCS`` as built by assign_wcs, or any object with the
APE 14 ``pixel_to_world_values`` / ``world_to_pixel_values`` methods, e.g. ``astropy.wcs.WCS``)
and plain numbers; none reads files.

Conventions: pixel coordinates are 0-based ``(x, y)``; celestial coordinates are ICRS degrees;
a CD matrix is in degrees per pixel with ``CD[0]`` the RA row (``CD1_1, CD1_2``).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "pixel_to_world", "world_to_pixel", "footprint", "local_cd_matrix", "mean_pixel_area",
    "compute_fiducial", "cd_from_rotation", "tan_gwcs", "tan_header", "make_output_wcs",
    "OutputGrid",
]


# -- evaluating any WCS ----------------------------------------------------------------------
def pixel_to_world(wcs, x, y):
    """World coordinates (deg) of 0-based pixel positions, ignoring any bounding box.

    Parameters
    ----------
    wcs : gwcs.WCS or APE 14 WCS
    x, y : array_like
        0-based pixel coordinates.

    Returns
    -------
    ra, dec : numpy.ndarray
        Degrees (float64).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if hasattr(wcs, "forward_transform"):
        ra, dec = wcs(x, y, with_bounding_box=False)
    else:
        ra, dec = wcs.pixel_to_world_values(x, y)
    return np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)


def world_to_pixel(wcs, ra, dec):
    """0-based pixel positions of world coordinates (deg), ignoring any bounding box."""
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    if hasattr(wcs, "forward_transform"):
        x, y = wcs.invert(ra, dec, with_bounding_box=False)
    else:
        x, y = wcs.world_to_pixel_values(ra, dec)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def footprint(wcs, shape, nedge=8):
    """Sky positions of points along the outer edge of an image (pixel edges, not centres).

    Parameters
    ----------
    wcs : gwcs.WCS or APE 14 WCS
    shape : tuple of int
        ``(ny, nx)`` of the image.
    nedge : int
        Points per side (distortion bends the edges).

    Returns
    -------
    ra, dec : numpy.ndarray
        Degrees, ``4 * nedge`` points.
    """
    ny, nx = shape[-2:]
    t = np.linspace(0.0, 1.0, nedge, endpoint=False)
    x0, x1, y0, y1 = -0.5, nx - 0.5, -0.5, ny - 0.5
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(nedge, x1), x1 - (x1 - x0) * t, np.full(nedge, x0)])
    ys = np.concatenate([np.full(nedge, y0), y0 + (y1 - y0) * t, np.full(nedge, y1), y1 - (y1 - y0) * t])
    return pixel_to_world(wcs, xs, ys)


def _tangent_offsets(ra, dec, ra0, dec0):
    """Gnomonic (TAN) projection of (ra, dec) about (ra0, dec0): (xi east, eta north) in degrees."""
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return np.degrees(xi), np.degrees(eta)


def local_cd_matrix(wcs, x, y, step=1.0):
    """Local Jacobian of a WCS at pixel ``(x, y)``, in degrees per pixel on the tangent plane.

    Returns
    -------
    numpy.ndarray
        2x2 ``[[dxi/dx, dxi/dy], [deta/dx, deta/dy]]`` (xi towards east, eta towards north).
    """
    ra, dec = pixel_to_world(wcs, [x, x - step, x + step, x, x], [y, y, y, y - step, y + step])
    xi, eta = _tangent_offsets(ra, dec, ra[0], dec[0])
    return np.array([[(xi[2] - xi[1]) / (2 * step), (xi[4] - xi[3]) / (2 * step)],
                     [(eta[2] - eta[1]) / (2 * step), (eta[4] - eta[3]) / (2 * step)]])


def mean_pixel_area(wcs, shape, nsample=5, step=1.0):
    """Mean sky area of a pixel over the image, in steradians (Jacobians on an ``nsample`` grid).

    This is the ``input_pixel_area`` of the reference pipeline: photometry uses the nominal
    PIXAR_SR, and the ratio of the two rescales surface brightness during drizzling.
    """
    ny, nx = shape[-2:]
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, nsample), np.linspace(0, ny - 1, nsample))
    gx, gy = gx.ravel(), gy.ravel()
    xs = np.concatenate([gx - step, gx + step, gx, gx])
    ys = np.concatenate([gy, gy, gy - step, gy + step])
    ra, dec = pixel_to_world(wcs, xs, ys)          # one WCS evaluation for all stencils
    n = gx.size
    # local tangent planes about each stencil's first point would be exact; at these scales
    # the small-angle form with cos(dec) is accurate to << 1e-6
    dra = (ra[n:2 * n] - ra[:n] + 540.0) % 360.0 - 180.0
    j11 = dra * np.cos(np.radians(0.5 * (dec[:n] + dec[n:2 * n]))) / (2 * step)
    j21 = (dec[n:2 * n] - dec[:n]) / (2 * step)
    dra2 = (ra[3 * n:] - ra[2 * n:3 * n] + 540.0) % 360.0 - 180.0
    j12 = dra2 * np.cos(np.radians(0.5 * (dec[2 * n:3 * n] + dec[3 * n:]))) / (2 * step)
    j22 = (dec[3 * n:] - dec[2 * n:3 * n]) / (2 * step)
    area = np.abs(j11 * j22 - j12 * j21)
    return float(np.nanmean(area)) * (np.pi / 180.0) ** 2


def compute_fiducial(ras, decs):
    """Mean direction of a set of sky points (unit-vector average), in degrees.

    Parameters
    ----------
    ras, decs : array_like
        Degrees.

    Returns
    -------
    (ra, dec) : tuple of float
    """
    a, d = np.radians(np.asarray(ras, float)), np.radians(np.asarray(decs, float))
    v = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)]).mean(axis=1)
    v /= np.linalg.norm(v)
    ra = np.degrees(np.arctan2(v[1], v[0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(v[2], -1, 1)))
    return float(ra), float(dec)


def cd_from_rotation(scale_deg, rotation_deg):
    """CD matrix (deg/pixel) with east to the left and the y axis at position angle ``rotation``.

    ``rotation = 0`` is north up, east left.
    """
    t = np.radians(rotation_deg)
    return scale_deg * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])


def tan_gwcs(crval, crpix, cd, shape=None):
    """A ``gwcs.WCS`` of a TAN projection: frames ``detector`` -> ``world`` (ICRS, deg).

    Parameters
    ----------
    crval : (float, float)
        RA, Dec of the reference pixel, degrees.
    crpix : (float, float)
        0-based ``(x, y)`` of the reference pixel.
    cd : array_like
        2x2 CD matrix, degrees per pixel.
    shape : (ny, nx), optional
        Sets ``array_shape`` and the bounding box.
    """
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import WCS, coordinate_frames as cf

    shift = models.Shift(-float(crpix[0]), name="crpix1") & models.Shift(-float(crpix[1]), name="crpix2")
    affine = models.AffineTransformation2D(matrix=np.asarray(cd, float), translation=[0.0, 0.0], name="cd")
    # AffineTransformation2D works in the model's units: use degrees -> Pix2Sky expects degrees
    tan = models.Pix2Sky_TAN()
    celestial = models.RotateNative2Celestial(float(crval[0]), float(crval[1]), 180.0)
    transform = shift | affine | tan | celestial
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    sky = cf.CelestialFrame(reference_frame=coord.ICRS(), name="world", unit=(u.deg, u.deg),
                            axes_names=("lon", "lat"))
    w = WCS([(detector, transform), (sky, None)])
    if shape is not None:
        ny, nx = shape
        w.array_shape = (ny, nx)
        w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return w


def tan_header(crval, crpix, cd, shape=None):
    """FITS TAN WCS cards (1-based CRPIX) equivalent to :func:`tan_gwcs`."""
    from astropy.io import fits

    h = fits.Header()
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CRPIX1"], h["CRPIX2"] = float(crpix[0]) + 1.0, float(crpix[1]) + 1.0
    h["CRVAL1"], h["CRVAL2"] = float(crval[0]), float(crval[1])
    h["CD1_1"], h["CD1_2"] = float(cd[0][0]), float(cd[0][1])
    h["CD2_1"], h["CD2_2"] = float(cd[1][0]), float(cd[1][1])
    h["RADESYS"] = "ICRS"
    return h


class OutputGrid:
    """The output frame of a resampling: TAN WCS and array shape.

    Attributes
    ----------
    crval : (float, float)
        Degrees.
    crpix : (float, float)
        0-based pixel of ``crval``.
    cd : numpy.ndarray
        2x2, degrees per pixel.
    shape : (int, int)
        ``(ny, nx)``.
    """

    def __init__(self, crval, crpix, cd, shape):
        self.crval = tuple(float(v) for v in crval)
        self.crpix = tuple(float(v) for v in crpix)
        self.cd = np.asarray(cd, float)
        self.shape = (int(shape[0]), int(shape[1]))
        self.wcs = tan_gwcs(self.crval, self.crpix, self.cd, self.shape)

    @property
    def pixel_scale_deg(self):
        """Linear pixel scale, degrees."""
        return float(np.sqrt(abs(np.linalg.det(self.cd))))

    @property
    def pixel_area_sr(self):
        """Pixel area, steradians."""
        return float(abs(np.linalg.det(self.cd)) * (np.pi / 180.0) ** 2)

    def header(self):
        """FITS TAN cards for the SCI extension."""
        return tan_header(self.crval, self.crpix, self.cd, self.shape)

    def world_to_pixel(self, ra, dec):
        """0-based output pixel of sky positions (analytic TAN inverse)."""
        xi, eta = _tangent_offsets(np.asarray(ra, float), np.asarray(dec, float), *self.crval)
        inv = np.linalg.inv(self.cd)
        dx = inv[0, 0] * xi + inv[0, 1] * eta
        dy = inv[1, 0] * xi + inv[1, 1] * eta
        return dx + self.crpix[0], dy + self.crpix[1]


def make_output_wcs(geometries, *, pixel_scale_ratio=1.0, pixel_scale=None, rotation=None,
                    crpix=None, crval=None, output_shape=None):
    """The output grid covering all inputs, as the reference pipeline's ``make_output_wcs``.

    Parameters
    ----------
    geometries : list of (wcs, shape)
        The inputs' WCS and ``(ny, nx)``; the first is the reference (pixel scale, orientation).
    pixel_scale_ratio : float
        Output pixel scale / reference input pixel scale (ignored when ``pixel_scale`` is given).
    pixel_scale : float, optional
        Output pixel scale, arcsec.
    rotation : float, optional
        Position angle of the output y axis east of north, degrees; ``0`` is north up.
        ``None`` keeps the orientation (and parity) of the reference input's detector axes,
        as jwst does.
    crpix : (float, float), optional
        0-based ``(x, y)`` of the reference pixel; default: set so that the grid covers the
        footprints (or the centre when ``output_shape`` is given).
    crval : (float, float), optional
        RA, Dec (deg) of the tangent point; default: mean of all footprint points.
    output_shape : (int, int), optional
        ``(nx, ny)`` in the jwst ``x, y`` order.

    Returns
    -------
    OutputGrid
    """
    ras, decs = [], []
    for wcs, shape in geometries:
        r, d = footprint(wcs, shape)
        ras.append(r)
        decs.append(d)
    ras, decs = np.concatenate(ras), np.concatenate(decs)
    if crval is None:
        crval = compute_fiducial(ras, decs)
    ref_wcs, ref_shape = geometries[0]
    ny0, nx0 = ref_shape[-2:]
    jac = local_cd_matrix(ref_wcs, (nx0 - 1) / 2.0, (ny0 - 1) / 2.0)
    native_scale = float(np.sqrt(abs(np.linalg.det(jac))))
    scale = pixel_scale / 3600.0 if pixel_scale is not None else native_scale * float(pixel_scale_ratio)
    if rotation is None:
        # closest orthogonal matrix to the reference Jacobian (polar decomposition): keeps the
        # detector orientation and parity, removes skew and anisotropic scale
        u_, _s, vt = np.linalg.svd(jac)
        cd = scale * (u_ @ vt)
    else:
        cd = cd_from_rotation(scale, rotation)
    grid0 = OutputGrid(crval, (0.0, 0.0), cd, (1, 1))
    u, v = grid0.world_to_pixel(ras, decs)
    if output_shape is not None:
        nx, ny = int(output_shape[0]), int(output_shape[1])
        if crpix is None:
            crpix = ((nx - 1) / 2.0, (ny - 1) / 2.0)
    else:
        umin, umax, vmin, vmax = np.nanmin(u), np.nanmax(u), np.nanmin(v), np.nanmax(v)
        nx = max(1, int(np.ceil(umax - umin - 1e-6)))
        ny = max(1, int(np.ceil(vmax - vmin - 1e-6)))
        if crpix is None:
            # footprint edge umin lands on the output pixel edge -0.5
            crpix = (-umin - 0.5, -vmin - 0.5)
    return OutputGrid(crval, crpix, cd, (ny, nx))
