"""Write a file atomically: into a temporary file beside it, then rename.

A reader (or a crashed run) never sees a half-written product, catalog or manifest: the
destination either keeps its old content or gets the complete new one.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path"]


@contextmanager
def atomic_path(path):
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder is created.

    Yields
    ------
    pathlib.Path
        The temporary file (exists, empty) to write. On any exception it is removed and the
        exception propagates; ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
