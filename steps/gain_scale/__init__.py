"""gain_scale: rescale rate products by the gain reference GAINFACT.

The algorithm lives in :mod:`steps.gain_scale.gain_factor`.
"""
