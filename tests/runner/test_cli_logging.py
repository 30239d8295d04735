"""Third-party INFO logging stays quiet unless -v is given, even for libraries imported later."""
import logging

from runner.cli import _QuietLibraries


def _record(name, level):
    return logging.LogRecord(name, level, __file__, 1, "message", None, None)


def test_library_info_dropped_warnings_kept():
    quiet = _QuietLibraries(logging.WARNING)
    assert not quiet.filter(_record("tweakwcs.imalign", logging.INFO))
    assert quiet.filter(_record("tweakwcs.imalign", logging.WARNING))
    assert quiet.filter(_record("webbcal.step.tweakreg", logging.INFO))   # ours: the logger decides
    verbose = _QuietLibraries(logging.INFO)                              # -v
    assert verbose.filter(_record("tweakwcs.imalign", logging.INFO))
