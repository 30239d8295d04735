"""rscd: MIRI reset switch charge decay, baseline algorithm (flag initial groups).

The algorithm lives in :mod:`steps.rscd.baseline`.
"""
