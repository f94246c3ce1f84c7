"""Atomic writes of private files (mode 0600): a reader sees the old or the new file, never half of it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """fsync a directory, so that a rename in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A binary file that replaces path when the block ends (fsynced, then renamed); on an error path is untouched.

    The temporary file has the mode from its first byte (O_EXCL with the mode; chmod after, as the umask
    may have narrowed it), so a secret is never readable by others, not even half-written.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_private(path: Path, text: str) -> None:
    """Replace path with text atomically; the file is 0600 from its first byte."""
    with atomic_writer(path) as fh:
        fh.write(text.encode("utf-8"))
