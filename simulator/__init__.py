"""Synthetic JWST exposures with known truth, reference files and a local CRDS cache."""
