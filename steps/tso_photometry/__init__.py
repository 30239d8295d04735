"""tso_photometry (stage 3): circular-aperture light curve of a time-series imaging exposure."""
from .aperture_photometry import aperture_photometry, source_centroids

__all__ = ["aperture_photometry", "source_centroids"]
