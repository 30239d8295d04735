"""linearity: per-pixel polynomial linearity correction.

The algorithm lives in :mod:`steps.linearity.polynomial`.
"""
