"""Facades with the reference pipeline's names: ``Detector1Pipeline.call(path)`` and friends.

``.call()`` applies the CRDS parameter references of the context (operational settings);
``.run()`` does not. Both run the shipped recipe of the same alias. As in jwst, nothing is saved
unless ``save_results=True``; the result product(s) are returned.
"""
from __future__ import annotations

from .recipe import Recipe, normalise_overrides


class Pipeline:
    """Run a shipped recipe the way jwst users run its pipeline class."""

    recipe_alias = ""

    def __init__(self, *, output_dir=None, save_results=False, crds_context=None, **overrides):
        self.output_dir = output_dir
        self.save_results = save_results
        self.crds_context = crds_context
        self.overrides = normalise_overrides(overrides)

    def _go(self, inputs, apply_crds_pars):
        from .execute import run_recipe

        recipe = Recipe.load(self.recipe_alias)
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        results = run_recipe(recipe, list(inputs), overrides=self.overrides, output_dir=self.output_dir,
                             crds_context=self.crds_context, apply_crds_pars=apply_crds_pars,
                             save=self.save_results)
        products = [r.product for r in results]
        return products[0] if len(products) == 1 else products

    def run(self, input):
        """Run with recipe and keyword parameters only (no CRDS parameter references)."""
        return self._go(input, apply_crds_pars=False)

    @classmethod
    def call(cls, input, **kwargs):
        """Run with the CRDS parameter references of the context, then ``kwargs``."""
        return cls(**kwargs)._go(input, apply_crds_pars=True)


def _facade(name, alias):
    return type(name, (Pipeline,), {"recipe_alias": alias, "__doc__": f"The {alias} recipe as a jwst-style pipeline class."})


Detector1Pipeline = _facade("Detector1Pipeline", "calwebb_detector1")
Image2Pipeline = _facade("Image2Pipeline", "calwebb_image2")
Image3Pipeline = _facade("Image3Pipeline", "calwebb_image3")
Spec2Pipeline = _facade("Spec2Pipeline", "calwebb_spec2")
Spec3Pipeline = _facade("Spec3Pipeline", "calwebb_spec3")
Tso3Pipeline = _facade("Tso3Pipeline", "calwebb_tso3")
Coron3Pipeline = _facade("Coron3Pipeline", "calwebb_coron3")
Ami3Pipeline = _facade("Ami3Pipeline", "calwebb_ami3")
