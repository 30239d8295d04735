"""source_catalog: catalog of sources in the combined (i2d) image (stage 3)."""
