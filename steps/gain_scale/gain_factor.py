"""Rescale count-rate products by the GAINFACT of the gain reference file.

Some gain references are normalised with a factor recorded as GAINFACT in their header; the
rate must then be multiplied by it (jwst ``gain_scale``). Values scale by the factor, variances
by its square.
"""
import numpy as np

__all__ = ["scale_by_gain_factor"]


def scale_by_gain_factor(sci, err=None, *, gain_factor=None, var_poisson=None, var_rnoise=None,
                         var_flat=None):
    """Multiply a rate (and its errors) by GAINFACT, variances by GAINFACT**2 (in place).

    Parameters
    ----------
    sci : numpy.ndarray
        Rate, float32 (ny, nx) or (nints, ny, nx), DN/s. Modified in place.
    err : numpy.ndarray, optional
        Its 1-sigma error, DN/s. Modified in place.
    gain_factor : float or None
        GAINFACT keyword of the gain reference (dimensionless). None, NaN or 1 does nothing.
    var_poisson, var_rnoise, var_flat : numpy.ndarray, optional
        Variances, (DN/s)^2. Modified in place.

    Returns
    -------
    float
        The factor applied (1.0 means nothing was done).
    """
    if gain_factor is None:
        return 1.0
    g = float(gain_factor)
    if not np.isfinite(g) or g == 1.0:
        return 1.0
    np.multiply(sci, sci.dtype.type(g), out=sci)
    if err is not None:
        np.multiply(err, err.dtype.type(g), out=err)
    for var in (var_poisson, var_rnoise, var_flat):
        if var is not None:
            np.multiply(var, var.dtype.type(g * g), out=var)
    return g
