"""dark_current: subtract a frame-averaged dark ramp.

The algorithm lives in :mod:`steps.dark_current.dark_subtraction`.
"""
