"""firstframe: MIRI, flag the first group of each integration DO_NOT_USE.

The algorithm lives in :mod:`steps.firstframe.first_group`.
"""
