"""flat_field: divide imaging rates by the FLAT reference.

The algorithm lives in :mod:`steps.flat_field.flat`.
"""
