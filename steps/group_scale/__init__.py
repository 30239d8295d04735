"""group_scale: rescale ramps whose frames were summed with a divisor other than NFRAMES.

The algorithm lives in :mod:`steps.group_scale.scale_groups`.
"""
