"""assign_wcs: the detector -> v2v3 -> world gwcs of imaging exposures.

:mod:`steps.assign_wcs.pointing` holds the telescope-attitude rotation (V2V3 -> ICRS),
:mod:`steps.assign_wcs.distortion` reading of DISTORTION / FILTEROFFSET references,
:mod:`steps.assign_wcs.imaging` the gwcs assembly and its FITS SIP approximation.
"""
