"""refpix: reference-pixel drift and 1/f correction (near-IR and MIRI).

The algorithm lives in :mod:`steps.refpix.reference_pixels`.
"""
