"""SkyMatchStep: plugin over :func:`steps.skymatch.skymatch.match_sky`.

Each science member gets BKGLEVEL (the sky level found, data unit), BKGSUB (whether it was
subtracted) and BKGMETH in its primary header, as jwst's ``meta.background``; with
``subtract=True`` the level is subtracted from SCI. Members are written back with
``ProductSet.update``. A member without a WCS cannot be matched: InputError naming the file
(only 'local' and 'global' work without one).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field

from runner import SkipStep, Step, StepParameters
from runner.dqflags import pixel as _PIXEL
from runner.errors import InputError

from .skymatch import SkyImage, match_sky


class SkyMatchParameters(StepParameters):
    """Parameters of skymatch (jwst names and defaults)."""

    skymethod: Literal["local", "global", "match", "global+match"] = Field("match", description="Sky computation: local, global, match or global+match.")
    match_down: bool = Field(True, description="Match to the lowest sky (True) or the highest (False).")
    subtract: bool = Field(False, description="Subtract the sky levels from the science data.")
    skylist: Optional[str] = Field(None, description="File of user sky values (not supported here).")
    stepsize: Optional[int] = Field(None, ge=1, description="Pixel sampling of the overlap computation (None: 1).")
    skystat: Literal["mode", "median", "mean", "midpt"] = Field("mode", description="Sky statistic: mode, median (midpt) or mean.")
    dqbits: Optional[str] = Field("~DO_NOT_USE+NON_SCIENCE", description="DQ flags of pixels to ignore, jwst bit-field syntax (~ inverts).")
    lower: Optional[float] = Field(None, description="Ignore pixels below this (data unit).")
    upper: Optional[float] = Field(None, description="Ignore pixels above this (data unit).")
    nclip: int = Field(5, ge=0, description="Sigma-clipping iterations.")
    lsigma: float = Field(4.0, gt=0, description="Lower clipping limit (sigma).")
    usigma: float = Field(4.0, gt=0, description="Upper clipping limit (sigma).")
    binwidth: float = Field(0.1, gt=0, description="Histogram bin width for 'mode', in sigma.")
    in_memory: bool = Field(True, description="Accepted for compatibility.")


class SkyMatchStep(Step):
    """Compute (and optionally subtract) matched sky levels of overlapping exposures."""

    alias = "skymatch"
    class_name = "SkyMatchStep"
    Parameters = SkyMatchParameters
    reference_types = ()
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_SKYMAT"

    def process(self, product_set):
        p = self.params
        if not hasattr(product_set, "indices"):
            raise InputError(f"{getattr(product_set, 'filename', 'input')}: skymatch needs an association (a set of exposures)")
        if p.skylist:
            self.log.warning("skylist is not supported; sky levels are computed")
        indices = product_set.indices("science")
        if not indices:
            raise SkipStep("no science members")
        images = []
        for i in indices:
            prod = product_set.open(i)
            name = Path(str(product_set.members[i].path)).name
            if prod.wcs is None and p.skymethod in ("match", "global+match"):
                raise InputError(f"{name}: has no WCS (run assign_wcs first); skymethod={p.skymethod!r} needs it")
            data = np.asarray(prod.data, float)
            good = np.isfinite(data)
            if prod.dq is not None:
                good &= ~dq_mask(prod.dq, p.dqbits)
            images.append(SkyImage(data, good, prod.wcs, name))
            del prod
        stat_kw = dict(skystat=p.skystat, lower=p.lower, upper=p.upper, nclip=p.nclip,
                       lsigma=p.lsigma, usigma=p.usigma, binwidth=p.binwidth)
        levels, info = match_sky(images, p.skymethod, p.match_down, stat_kw, stride=p.stepsize or 1)
        for k in info.get("unmatched", []):
            if p.skymethod in ("match", "global+match") and len(images) > 1:
                self.log.warning("%s: overlaps no other exposure; its sky is not matched (level %.6g)",
                                 images[k].name, levels[k])
        for i, lev, im in zip(indices, levels, images):
            prod = product_set.open(i)
            lev = float(lev) if np.isfinite(lev) else 0.0
            if p.subtract:
                prod.data = (np.asarray(prod.data, np.float32) - np.float32(lev)).astype(np.float32)
            prod.meta["BKGLEVEL"] = (lev, "skymatch sky level")
            prod.meta["BKGSUB"] = (bool(p.subtract), "sky level subtracted")
            prod.meta["BKGMETH"] = (p.skymethod, "skymatch method")
            prod.meta["S_SKYMAT"] = "COMPLETE"
            self.log.info("%s: sky level %.6g%s", im.name, lev, " (subtracted)" if p.subtract else "")
            product_set.update(i, prod)
        return product_set


def dq_mask(dq, dqbits):
    """True where a pixel is flagged by ``dqbits`` (jwst bit-field syntax, names allowed)."""
    from astropy.nddata.bitmask import bitfield_to_boolean_mask

    if dqbits is None or str(dqbits).strip() == "":
        return np.zeros(np.shape(dq), bool)
    names = {k: int(v) for k, v in _PIXEL.items()}
    # good_mask_value=False: True marks flagged (bad) pixels; 'ignore_flags' are the bits that
    # do NOT make a pixel bad; '~' inverts, as in jwst
    return bitfield_to_boolean_mask(np.asarray(dq).astype(np.int64), ignore_flags=dqbits,
                                    good_mask_value=False, dtype=bool, flag_name_map=names)
