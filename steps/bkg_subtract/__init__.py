"""bkg_subtract: subtract the combined background exposures of an image2/spec2 association."""
