"""Ramp fitting (stage 1): OLS slopes from up-the-ramp data."""
from .ols import RampFitResult, RampProducts, fit_ramps, resolve_cores

__all__ = ["RampFitResult", "RampProducts", "fit_ramps", "resolve_cores"]
