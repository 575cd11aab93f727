"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: str | Path, *, fsync: bool = False) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same folder, renamed over it on success.

    The temporary name is unique (``tempfile.mkstemp``), so processes writing the same target
    at once never share a temporary file; the last rename wins and each rename is atomic. If the
    body raises, the temporary file is removed and ``path`` is left as it was.

    Args:
        path: The file to (re)write; its folder is created if missing.
        fsync: Flush the data to disk before the rename (for caches that must survive a crash
            of the machine, not just of the process).

    Yields:
        A binary file object to write to (``pq.write_table(table, fh)``, ``fh.write(...)``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
