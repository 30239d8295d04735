"""saturation: flag saturated and A/D-floor groups.

The algorithm lives in :mod:`steps.saturation.saturated_groups`.
"""
