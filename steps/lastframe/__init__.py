"""lastframe: MIRI, flag the last group of each integration DO_NOT_USE.

The algorithm lives in :mod:`steps.lastframe.last_group`.
"""
