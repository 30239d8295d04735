"""webbcal runner: the generic, recipe-driven framework.

The runner loads a YAML recipe, validates it, resolves parameters, reference files and the
mode variant for each input, plans the step sequence and executes registered step plugins.
It knows nothing of any particular step: steps live in ``steps/`` and register through the
``webbcal.steps`` entry-point group.

Public API
----------
Recipe, Step, StepParameters, Product, SkipStep, WebbcalError
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("webbcal")
except PackageNotFoundError:  # running from a source checkout that is not installed
    __version__ = "0.1.0.dev0"

from .errors import WebbcalError  # noqa: E402
from .product import Product  # noqa: E402
from .step import SkipStep, Step, StepParameters  # noqa: E402


def __getattr__(name):
    # Recipe pulls in yaml/jsonschema/crds machinery: import it lazily.
    if name == "Recipe":
        from .recipe import Recipe

        return Recipe
    raise AttributeError(name)


__all__ = ["Recipe", "Step", "StepParameters", "Product", "SkipStep", "WebbcalError", "__version__"]
