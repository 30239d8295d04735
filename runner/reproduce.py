"""Re-run what produced a product: its recipe, pinned to the CRDS context in its header.

Archive products carry CRDS_CTX (the context used) and CAL_VER (the software version). We run
the matching recipe pinned to that context, with the CRDS parameter references applied (as
operations do), and warn when the installed software differs from what made the product.
"""
from __future__ import annotations

import logging
from pathlib import Path

from astropy.io import fits

from . import __version__
from .errors import InputError
from .product import rootname

log = logging.getLogger("webbcal.reproduce")

#: product suffix -> (recipe for imaging, recipe for spectroscopy, suffix of its input)
_BY_SUFFIX = {
    "rate": ("calwebb_detector1", "calwebb_detector1", "uncal"),
    "rateints": ("calwebb_detector1", "calwebb_detector1", "uncal"),
    "cal": ("calwebb_image2", "calwebb_spec2", "rate"),
    "calints": ("calwebb_image2", "calwebb_spec2", "rateints"),
}
_SPECTRO_PREFIXES = ("NRS_", "MIR_LRS", "MIR_MRS", "NIS_SOSS", "NIS_WFSS", "NRC_WFSS", "NRC_TSGRISM")


def choose_recipe(meta, suffix):
    """The recipe alias that makes a product of this suffix and EXP_TYPE."""
    if meta.get("WC_RECIP"):
        return str(meta["WC_RECIP"])
    if suffix not in _BY_SUFFIX:
        raise InputError(f"cannot tell which recipe made a '{suffix}' product; known: {', '.join(_BY_SUFFIX)}")
    imaging, spectro, _ = _BY_SUFFIX[suffix]
    exp_type = str(meta.get("EXP_TYPE", ""))
    return spectro if exp_type.startswith(_SPECTRO_PREFIXES) else imaging


def reproduce(product_path, *, input_path=None, output_dir="reproduced"):
    """Re-run the recipe that made ``product_path``; returns the run results."""
    from .crds_refs import crds_version
    from .execute import run_recipe
    from .recipe import Recipe

    product_path = Path(product_path)
    if not product_path.is_file():
        raise InputError(f"{product_path}: file not found")
    try:
        meta = fits.getheader(product_path, 0)
    except Exception as exc:
        raise InputError(f"{product_path}: cannot read FITS header ({str(exc).splitlines()[0]})") from None
    context = meta.get("CRDS_CTX")
    if not context:
        raise InputError(f"{product_path}: no CRDS_CTX keyword; cannot tell which CRDS context made it")
    stem = product_path.name[:-5] if product_path.name.endswith(".fits") else product_path.stem
    suffix = stem.rpartition("_")[2]
    alias = choose_recipe(meta, suffix)
    if input_path is None:
        in_suffix = _BY_SUFFIX.get(suffix, (None, None, "uncal"))[2]
        input_path = product_path.parent / f"{rootname(product_path.name)}_{in_suffix}.fits"
    if not Path(input_path).is_file():
        raise InputError(f"{input_path}: input to reproduce {product_path.name} not found (pass --input)")
    made_by = str(meta.get("CAL_VER", "unknown"))
    if made_by != __version__:
        log.warning("%s was made by calibration software version %s; reproducing with webbcal %s",
                    product_path.name, made_by, __version__)
    if meta.get("CRDS_VER") and str(meta["CRDS_VER"]) != crds_version():
        log.warning("%s was made with CRDS client %s; installed %s", product_path.name, meta["CRDS_VER"], crds_version())
    recipe = Recipe.load(alias)
    recipe.data.setdefault("crds", {})
    recipe.data["crds"] = {**(recipe.data["crds"] or {}), "context": context}
    results = run_recipe(recipe, [input_path], output_dir=output_dir, apply_crds_pars=True)
    old_hash = meta.get("WC_CHASH")
    for r in results:
        if old_hash and r.config_hash != old_hash:
            log.warning("configuration differs from the original run (hash %s..., now %s...)",
                        old_hash[:12], (r.config_hash or "")[:12])
    return results
