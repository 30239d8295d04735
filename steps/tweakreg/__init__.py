"""tweakreg: relative and absolute alignment of the WCS of imaging exposures (stage 3)."""
