"""RampFitStep: plugin over :func:`steps.ramp_fit.ols.fit_ramps`.

Takes a ramp product, returns the ``rate`` image product and emits the ``rateints`` cube.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np
from pydantic import Field

from runner import Product, Step, StepParameters

from .ols import fit_ramps

_RATE_UNITS = "DN/s"


class RampFitParameters(StepParameters):
    """Parameters of ramp_fit (the reference pipeline's names and defaults)."""

    algorithm: Literal["OLS", "OLS_C", "LIKELY"] = Field("OLS_C", description="Fitting algorithm; OLS and OLS_C are the same here; LIKELY is not implemented (OLS_C is used, with a warning).")
    int_name: str = Field("", description="Reference-pipeline name of the rateints output (unused: the runner names it).")
    save_opt: bool = Field(False, description="Save optional results (NOT IMPLEMENTED: ignored with a warning).")
    opt_name: str = Field("", description="Name of the optional results file (unused).")
    suppress_one_group: bool = Field(True, description="Do not fit ramps with exactly one good group (NaN, DO_NOT_USE).")
    firstgroup: Optional[int] = Field(None, ge=0, description="First group (0-based) to fit; earlier groups get DO_NOT_USE.")
    lastgroup: Optional[int] = Field(None, ge=0, description="Last group (0-based) to fit; later groups get DO_NOT_USE.")
    maximum_cores: Union[int, str] = Field("all", description="Threads: an integer, 'none', 'quarter', 'half' or 'all' (results do not depend on it).")
    poisson_variance: Literal["propagated", "reference"] = Field(
        "propagated", description="VAR_POISSON of ramps split by jumps and of frame-averaged groups (NFRAMES > 1): of the estimator actually used ('propagated') or stcal's ('reference').")
    weighting: Literal["optimal", "optimal_stcal"] = Field(
        "optimal", description="Optimal-weighting exponent chosen from the S/N expected from the pixel's robust rate ('optimal', unbiased) or from each segment's own end points as stcal ('optimal_stcal'). stcal bit for bit: poisson_variance='reference' with weighting='optimal_stcal'.")


class RampFitStep(Step):
    """Fit count rates to ramps (OLS, optimal weighting): rate and rateints products."""

    alias = "ramp_fit"
    class_name = "RampFitStep"
    Parameters = RampFitParameters
    reference_types = ("readnoise", "gain")
    input_kind = "ramp"
    output_kind = "image"
    status_keyword = "S_RAMP"
    chunking = "rows"  # each pixel's ramps over all integrations (rate combines them)

    def process(self, product):
        p = self.params
        if p.algorithm == "LIKELY":
            self.log.warning("ramp_fit: algorithm LIKELY is not implemented; using OLS_C")
        if p.save_opt:
            self.log.warning("ramp_fit: save_opt (optional results) is not implemented")
        gain = self.reference("gain").array("SCI", product)
        readnoise = self.reference("readnoise").array("SCI", product)
        tgroup, tframe = self.require(product, "TGROUP", "TFRAME")
        nframes = int(product.get("NFRAMES", 1) or 1)
        data = np.asarray(product.data, dtype=np.float32)
        nints, ngroups, ny, nx = data.shape
        gdq = product.groupdq
        gdq = np.zeros(data.shape, np.uint8) if gdq is None else np.asarray(gdq, dtype=np.uint8)
        pdq = product.pixeldq
        pdq = np.zeros((ny, nx), np.uint32) if pdq is None else np.asarray(pdq, dtype=np.uint32)
        if p.firstgroup is not None or p.lastgroup is not None:
            gdq = gdq.copy()
            first = p.firstgroup or 0
            last = ngroups - 1 if p.lastgroup is None else min(p.lastgroup, ngroups - 1)
            gdq[:, :first] |= np.uint8(1)
            gdq[:, last + 1:] |= np.uint8(1)
        res = fit_ramps(data, gdq, pdq, gain, readnoise, tgroup=float(tgroup), tframe=float(tframe),
                        nframes=nframes, groupgap=int(product.get("GROUPGAP", 0) or 0),
                        drop_frames1=int(product.get("DRPFRMS1", 0) or 0),
                        suppress_one_group=p.suppress_one_group, maximum_cores=p.maximum_cores,
                        poisson_variance=p.poisson_variance, weighting=p.weighting)
        rate = self._product("image", product, res.rate)
        self.emit(self._product("cube", product, res.rateints), "rateints")
        return rate

    @staticmethod
    def _product(kind, ramp, r):
        meta = ramp.meta.copy()
        arrays = {"SCI": r.data, "ERR": r.err, "DQ": r.dq, "VAR_POISSON": r.var_poisson,
                  "VAR_RNOISE": r.var_rnoise}
        headers = {k: v.copy() for k, v in ramp.ext_headers.items() if k in ("SCI",)}
        out = Product(kind, meta, arrays, tables=dict(ramp.tables), ext_headers=headers,
                      filename=ramp.filename)
        sci = out.ext_headers.setdefault("SCI", type(meta)())
        sci["BUNIT"] = _RATE_UNITS
        return out
