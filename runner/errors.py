"""Exceptions whose message is the one line a user needs: the file and the problem."""


class WebbcalError(Exception):
    """Base class: ``str(err)`` is a complete one-line cause, naming the file where relevant."""


class RecipeError(WebbcalError):
    """A recipe is malformed: unknown key, wrong type, unknown step or parameter, bad value."""


class InputError(WebbcalError):
    """An input product cannot be used: missing, not FITS, truncated, wrong shape, keyword missing."""


class ReferenceFileError(WebbcalError):
    """A reference file is missing, of the wrong type, or cannot be selected for this context."""


class StepUnavailableError(WebbcalError):
    """A recipe names a step that no installed plugin provides."""


class LockMismatchError(WebbcalError):
    """A run would differ from its lock file."""
