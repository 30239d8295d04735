"""BackgroundStep: subtract background exposures listed in the association."""
from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field

from runner import SkipStep, Step, StepParameters

from .combine import combine_backgrounds, robust_level, subtract_background


class BackgroundParameters(StepParameters):
    """Parameters of bkg_subtract (jwst names where they exist)."""

    sigma: float = Field(3.0, gt=0, description="Clipping threshold (sigma) when combining >= 3 background members.")
    maxiters: Optional[int] = Field(None, ge=1, description="Clipping iterations (None: until converged, max 10).")
    scale_background: bool = Field(
        False, description="Scale the combined background to the science exposure's sigma-clipped sky level.")


class BackgroundStep(Step):
    """Subtract the sigma-clipped mean of an association's background members (skipped without any)."""

    alias = "bkg_subtract"
    class_name = "BackgroundStep"
    Parameters = BackgroundParameters
    reference_types = ()
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_BKDSUB"

    def process(self, product):
        asn_product = getattr(product, "asn_product", None)
        members = asn_product.of_type("background") if asn_product is not None else []
        if not members:
            raise SkipStep("no background members in the association")
        from runner import Product

        images, dqs = [], []
        for member in members:
            bkg = Product.open(member.path)
            if bkg.data.shape != product.data.shape:
                from runner.errors import InputError

                raise InputError(f"{member.path}: background shape {bkg.data.shape} differs from the "
                                 f"science {product.data.shape}")
            images.append(bkg.data)
            dqs.append(bkg.dq)
        background, _ = combine_backgrounds(images, dqs, sigma=self.params.sigma, maxiters=self.params.maxiters)
        scale = 1.0
        if self.params.scale_background:
            scale = robust_level(product.data, product.dq) / robust_level(background)
        data = np.array(product.data, dtype=np.float32, copy=True)
        dq = product.dq if product.dq is not None else np.zeros(data.shape[-2:], np.uint32)
        subtract_background(data, dq, background, scale=scale)
        product.data = data
        product.dq = dq
        product.meta["BKGSCALE"] = (float(scale), "scale applied to the combined background")
        self.log.info("subtracted %d background member(s), scale %.4f", len(members), scale)
        return product
