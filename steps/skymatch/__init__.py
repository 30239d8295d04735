"""skymatch: equalise (or remove) the sky of overlapping imaging exposures (stage 3)."""
