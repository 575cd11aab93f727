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


_claimed: dict[str, str] = {}


def claim_folder(base: str | Path) -> str:
    """Create a new folder ``<base>-<6 hex>`` with an exclusive ``mkdir`` and return its path.

    ``os.mkdir`` fails if the folder exists, so two processes (or two hosts on a shared disk)
    that start in the same second can never be handed the same folder: a collision of the
    random suffix is detected and another suffix drawn. Within one process the same ``base``
    gives the folder claimed first (Hydra resolves its run directory more than once).

    Args:
        base: The folder's path without the suffix (``outputs/2026-01-01/12-00-00``); its
            parents are created as needed.

    Returns:
        The claimed folder's path.
    """
    import secrets

    key = str(base)
    if key in _claimed:
        return _claimed[key]
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = f"{key}-{secrets.token_hex(3)}"
        try:
            os.mkdir(path)
        except FileExistsError:
            continue  # someone else's folder: draw another suffix
        _claimed[key] = path
        return path
