"""photom: convert flat-fielded count rates (DN/s) to surface brightness (MJy/sr).

The algorithm lives in :mod:`steps.photom.photometric`.
"""
