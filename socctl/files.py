"""Writing files that hold secrets or state: whole or not at all, 0600 from the start."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a 0600 file through a temporary one and a rename.

    A full disk or a kill mid-write must not leave an empty secrets or state file that
    every later run then chokes on; the file is never readable by others, not even
    between create and chmod.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
