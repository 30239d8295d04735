"""superbias: subtract the per-pixel bias level.

The algorithm lives in :mod:`steps.superbias.bias_subtraction`.
"""
