"""reset: MIRI reset-anomaly correction (subtract the RESET reference ramp).

The algorithm lives in :mod:`steps.reset.reset_subtraction`.
"""
