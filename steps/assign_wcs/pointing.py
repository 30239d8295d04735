"""The telescope pointing: V2V3 (arcsec) -> ICRS (deg), as jwst's ``pointing.v23tosky``.

The attitude rotation takes a unit vector of (V2, V3), read as longitude / latitude on the
unit sphere, to the sky::

    M = Rz(RA_REF) . Ry(-DEC_REF) . Rx(-ROLL_REF) . Ry(V3_REF) . Rz(-V2_REF)   (active)

written, as in jwst, as astropy's ``RotationSequence3D`` (which rotates the coordinate frame,
i.e. applies the opposite angles) with angles ``[V2_REF, -V3_REF, ROLL_REF, DEC_REF, -RA_REF]``
about axes ``'zyxyz'``. The reference point (V2_REF, V3_REF) goes to (RA_REF, DEC_REF); the
+V3 direction there points at position angle ROLL_REF (east of north) and +V2 at
ROLL_REF + 90 deg. Velocity aberration is not applied.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Pointing", "POINTING_KEYWORDS", "v23tosky"]

#: SCI-header keywords the rotation needs
POINTING_KEYWORDS = ("V2_REF", "V3_REF", "ROLL_REF", "RA_REF", "DEC_REF")


@dataclass(frozen=True)
class Pointing:
    """Reference point of an exposure.

    Attributes
    ----------
    v2_ref, v3_ref : float
        Telescope-frame position of the aperture reference point, arcsec.
    roll_ref : float
        Position angle of +V3 at the reference point, deg (east of north).
    ra_ref, dec_ref : float
        ICRS position of the reference point, deg.
    """

    v2_ref: float
    v3_ref: float
    roll_ref: float
    ra_ref: float
    dec_ref: float

    @classmethod
    def from_values(cls, values):
        """From a sequence in :data:`POINTING_KEYWORDS` order."""
        return cls(*(float(v) for v in values))


def v23tosky(pointing: Pointing, wrap_v2_at: int = 180, wrap_lon_at: int = 360):
    """The V2V3 -> sky transform of a pointing.

    Parameters
    ----------
    pointing : Pointing
    wrap_v2_at, wrap_lon_at : float
        Longitude wrapping (180 or 360) of V2 and of RA, deg.

    Returns
    -------
    astropy.modeling.Model
        Inputs ``(v2, v3)`` in arcsec, outputs ``(ra, dec)`` in deg; invertible.
    """
    from astropy.modeling.models import RotationSequence3D, Scale
    from gwcs.geometry import CartesianToSpherical, SphericalToCartesian

    angles = [pointing.v2_ref / 3600.0, -pointing.v3_ref / 3600.0, pointing.roll_ref,
              pointing.dec_ref, -pointing.ra_ref]
    rotation = RotationSequence3D(angles, axes_order="zyxyz", name="attitude")
    model = ((Scale(1 / 3600.0) & Scale(1 / 3600.0))
             | SphericalToCartesian(wrap_lon_at=wrap_v2_at)
             | rotation
             | CartesianToSpherical(wrap_lon_at=wrap_lon_at))
    model.name = "v23tosky"
    return model
