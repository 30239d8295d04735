"""Step plugin registry: the ``webbcal.steps`` entry-point group.

Listing steps reads entry-point metadata only; a step's module is imported when the step is
first used, so ``run-recipe list`` stays fast and a broken or missing plugin only affects
recipes that use it.
"""
from __future__ import annotations

import difflib
from importlib.metadata import entry_points

from .errors import StepUnavailableError

GROUP = "webbcal.steps"

_registered = {}     # alias -> Step class registered programmatically
_loaded = {}         # alias -> Step class loaded from an entry point
_failures = {}       # alias -> reason the plugin could not be loaded


_entry_point_map = None     # alias -> EntryPoint, read once per process


def _entry_points():
    """The group's entry points (scanning every installed distribution costs ~15 ms: done once)."""
    global _entry_point_map
    if _entry_point_map is None:
        _entry_point_map = {ep.name: ep for ep in entry_points(group=GROUP)}
    return _entry_point_map


def register(step_class):
    """Register a Step class programmatically (tests, notebooks); returns the class."""
    if not step_class.alias:
        raise ValueError(f"{step_class.__name__} declares no alias")
    _registered[step_class.alias] = step_class
    _failures.pop(step_class.alias, None)
    return step_class


def unregister(alias):
    """Remove a programmatically registered step."""
    _registered.pop(alias, None)


def names():
    """Aliases of every declared step plugin (without importing them), sorted."""
    return sorted(set(_entry_points()) | set(_registered))


def get(alias):
    """The Step class for ``alias``.

    Raises
    ------
    StepUnavailableError
        No plugin declares the alias, or its module fails to import (reason included).
    """
    if alias in _registered:
        return _registered[alias]
    if alias in _loaded:
        return _loaded[alias]
    eps = _entry_points()
    ep = eps.get(alias)
    if ep is None:
        hint = suggest(alias, eps.keys() | _registered.keys())
        raise StepUnavailableError(f"no step plugin named '{alias}' is installed{hint}")
    try:
        cls = ep.load()
    except Exception as exc:  # a plugin whose module is missing or broken is unavailable
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        _failures[alias] = reason
        raise StepUnavailableError(f"step '{alias}' is not available ({reason})") from None
    _loaded[alias] = cls
    return cls


def available(alias):
    """True when ``alias`` loads."""
    try:
        get(alias)
        return True
    except StepUnavailableError:
        return False


def entry_point_value(alias):
    """``module:Class`` an alias points to, or None."""
    ep = _entry_points().get(alias)
    return ep.value if ep else None


def suggest(word, candidates):
    """``"; did you mean 'x'?"`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(str(word), sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
