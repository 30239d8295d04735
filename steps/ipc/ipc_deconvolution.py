"""Interpixel-capacitance (IPC) correction: convolve every group with the IPC reference kernel.

The IPC reference holds a *deconvolution* kernel (centre > 1, negative neighbours), so the
correction is a convolution with it (jwst ``ipc``). The kernel is either one small image
(ky, kx) used everywhere, or a per-pixel kernel (ky, kx, ny, nx). As in jwst:

* reference pixels are not changed, and where the kernel overlaps reference pixels (or the
  edge of the array) those pixels contribute zero;
* the kernel is centred at ``(ky // 2, kx // 2)`` and applied as
  ``out[y, x] = sum_{j,i} K[j, i] * in[y + j - cy, x + i - cx]`` (for a 4-D kernel
  ``K[j, i, y, x]``: the weights belong to the output pixel).

Reference pixels are given by ``ref_mask`` or derived from the 4-pixel near-IR border of the
full frame via ``xstart, ystart`` (1-based SUBSTRT1/2) and ``full_shape``.
"""
import numpy as np
from numba import njit, prange

__all__ = ["correct_ipc", "nir_reference_mask"]

REFERENCE_PIXEL = np.uint32(1 << 31)


def nir_reference_mask(shape, *, xstart=1, ystart=1, full_shape=(2048, 2048), nref=4,
                       pixeldq=None):
    """Boolean (ny, nx) mask of near-IR reference pixels in a (sub)array.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) of the science array.
    xstart, ystart : int, optional
        1-based position of the subarray in the full frame (SUBSTRT1, SUBSTRT2).
    full_shape : tuple of int, optional
        (ny, nx) of the full frame.
    nref : int, optional
        Width of the reference border in pixels (4 for NIR detectors).
    pixeldq : numpy.ndarray, optional
        Pixel DQ; pixels with REFERENCE_PIXEL are added to the mask.

    Returns
    -------
    numpy.ndarray
        bool (ny, nx).
    """
    ny, nx = shape
    Y = ystart - 1 + np.arange(ny)
    X = xstart - 1 + np.arange(nx)
    rows = (Y < nref) | (Y >= full_shape[0] - nref)
    cols = (X < nref) | (X >= full_shape[1] - nref)
    mask = rows[:, None] | cols[None, :]
    if pixeldq is not None:
        mask |= (pixeldq & REFERENCE_PIXEL) != 0
    return mask


@njit(parallel=True, cache=True)
def _convolve(planes, kernel, isref, per_pixel):
    nplanes, ny, nx = planes.shape
    ky = kernel.shape[0]
    kx = kernel.shape[1]
    cy = ky // 2
    cx = kx // 2
    tmp = np.empty((ny, nx), dtype=np.float32)
    for p in range(nplanes):
        plane = planes[p]
        for y in prange(ny):
            for x in range(nx):
                tmp[y, x] = 0.0 if isref[y, x] else plane[y, x]
        for y in prange(ny):
            acc = np.zeros(nx)
            for j in range(ky):
                yy = y + j - cy
                if yy < 0 or yy >= ny:
                    continue
                src = tmp[yy]
                for i in range(kx):
                    off = i - cx
                    x0 = max(0, -off)
                    x1 = min(nx, nx - off)
                    if per_pixel:
                        w = kernel[j, i, y]
                        for x in range(x0, x1):
                            acc[x] += w[x] * src[x + off]
                    else:
                        w0 = kernel[j, i, 0, 0]
                        for x in range(x0, x1):
                            acc[x] += w0 * src[x + off]
            ref = isref[y]
            out = plane[y]
            for x in range(nx):
                if not ref[x]:
                    out[x] = acc[x]


def correct_ipc(data, kernel, *, ref_mask=None, pixeldq=None, xstart=1, ystart=1,
                full_shape=(2048, 2048), nref=4):
    """Convolve every group with the IPC deconvolution kernel (in place).

    Parameters
    ----------
    data : numpy.ndarray
        Ramp, float32 (nints, ngroups, ny, nx), DN. Modified in place.
    kernel : numpy.ndarray
        IPC reference kernel (ky, kx), or per-pixel (ky, kx, ny, nx) / full-frame
        (ky, kx, NY, NX) which is cut with ``xstart, ystart``. Dimensionless.
    ref_mask : numpy.ndarray, optional
        bool (ny, nx) reference-pixel mask; default derived from the NIR border geometry and
        REFERENCE_PIXEL in ``pixeldq`` (see :func:`nir_reference_mask`).
    pixeldq : numpy.ndarray, optional
        Pixel DQ (uint32) used for REFERENCE_PIXEL.
    xstart, ystart : int, optional
        1-based SUBSTRT1/2 of the science subarray.
    full_shape : tuple of int, optional
        Full-frame (ny, nx).
    nref : int, optional
        Reference border width; 0 for detectors without reference pixels.

    Returns
    -------
    numpy.ndarray
        The corrected ramp (DN), same object.
    """
    ny, nx = data.shape[-2:]
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim == 2:
        k4 = kernel[:, :, None, None]
        per_pixel = False
    elif kernel.ndim == 4:
        if kernel.shape[2:] == (ny, nx):
            k4 = kernel
        elif kernel.shape[2:] == tuple(full_shape):
            k4 = kernel[:, :, ystart - 1:ystart - 1 + ny, xstart - 1:xstart - 1 + nx]
        else:
            raise ValueError(f"IPC kernel shape mismatch: expected (ky, kx), (ky, kx, {ny}, {nx}) "
                             f"or (ky, kx, {full_shape[0]}, {full_shape[1]}), found {kernel.shape}")
        per_pixel = True
    else:
        raise ValueError(f"IPC kernel must be 2-D or 4-D, found shape {kernel.shape}")
    if ref_mask is None:
        ref_mask = nir_reference_mask((ny, nx), xstart=xstart, ystart=ystart,
                                      full_shape=full_shape, nref=nref, pixeldq=pixeldq)
    elif ref_mask.shape != (ny, nx):
        raise ValueError(f"ref_mask shape mismatch: expected {(ny, nx)}, found {ref_mask.shape}")
    planes = data.reshape((-1, ny, nx))
    _convolve(planes, np.ascontiguousarray(k4), np.asarray(ref_mask, dtype=np.bool_), per_pixel)
    if not np.shares_memory(planes, data):  # non-contiguous input: reshape made a copy
        data[...] = planes.reshape(data.shape)
    return data
