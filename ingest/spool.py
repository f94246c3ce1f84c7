"""The ingest's durable spool: batches of line protocol kept on disk while InfluxDB cannot take them.

Append-only segment files of records ``[length u32][crc32 u32][created f64][payload]``; each append
is one write and one fsync, and a message is acknowledged to the broker only after the fsync of the
batch that holds its points. Records are replayed oldest first and a segment is deleted once every
record in it is in InfluxDB. After a crash the segments are scanned again: a torn last record (the
fsync had not returned, so nothing in it was acknowledged) is cut off; a replay that was under way
starts again at the head record, which InfluxDB's overwrite of identical points makes harmless.

Bounds: ``max_bytes`` and ``max_age`` (of the oldest record). When either is reached the spool is
full: `append` raises SpoolFullError, the ingest stops acknowledging (the broker keeps the messages,
nothing is dropped) and says so loudly, until replay makes room.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IId")
SEGMENT_SUFFIX = ".spool"
DEFAULT_MAX_BYTES = 1024**3
DEFAULT_MAX_AGE = 24 * 3600.0
DEFAULT_SEGMENT_BYTES = 16 * 1024**2


class SpoolFullError(RuntimeError):
    """The spool has reached its bound by bytes or by age; the caller must not acknowledge."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One spooled batch: where it is, when it was spooled, and its line protocol."""

    segment: int
    offset: int
    created: float
    payload: bytes


@dataclass(slots=True)
class _Record:
    segment: int
    offset: int
    length: int
    created: float


class Spool:
    """A directory of segments; not thread-safe (the ingest's writer thread alone uses it)."""

    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_age: float = DEFAULT_MAX_AGE,
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.segment_bytes = segment_bytes
        self.recovered_records = 0
        self.truncated_bytes = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._records: deque[_Record] = deque()
        self._sizes: dict[int, int] = {}
        self._bytes = 0
        self._active: int | None = None
        self._file: int | None = None
        self._recover()

    # -- state ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    @property
    def size_bytes(self) -> int:
        """Bytes of records not yet replayed."""
        return self._bytes

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds since the oldest record was spooled (0 when empty)."""
        if not self._records:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self._records[0].created)

    def full(self, extra: int = 0) -> str | None:
        """Why the spool cannot take extra more bytes now, or None if it can."""
        if self._records and self._bytes + extra > self.max_bytes:
            return f"spool holds {self._bytes} bytes, bound {self.max_bytes}"
        if not self._records and extra > self.max_bytes:
            return f"batch of {extra} bytes is larger than the spool bound {self.max_bytes}"
        age = self.oldest_age()
        if age > self.max_age:
            return f"oldest spooled batch is {age:.0f} s old, bound {self.max_age:.0f} s"
        return None

    # -- writing -------------------------------------------------------------------------------
    def append(self, payload: bytes, created: float | None = None) -> None:
        """Write one batch durably (write + fsync); raises SpoolFullError at the bound, OSError on disk errors."""
        reason = self.full(len(payload) + _HEADER.size)
        if reason:
            raise SpoolFullError(reason)
        created = time.time() if created is None else created
        if self._file is None or self._active is None or self._sizes[self._active] >= self.segment_bytes:
            self._open_segment()
        assert self._file is not None and self._active is not None
        record = _HEADER.pack(len(payload), zlib.crc32(payload), created) + payload
        offset = self._sizes[self._active]
        try:
            # On a nearly full disk write() stores part of the record and returns the count without
            # raising: a record written short is a failed append, never one to acknowledge or replay.
            written = os.write(self._file, record)
            if written != len(record):
                raise OSError(errno.ENOSPC, f"short write to the spool ({written} of {len(record)} bytes)")
            os.fsync(self._file)
        except OSError:
            # A short write (disk full) leaves a torn record: cut it off so the segment stays readable.
            os.ftruncate(self._file, offset)
            raise
        self._sizes[self._active] = offset + len(record)
        self._records.append(_Record(self._active, offset, len(payload), created))
        self._bytes += len(record)

    def _open_segment(self) -> None:
        if self._file is not None:
            os.close(self._file)
        number = max(self._sizes, default=0) + 1
        path = self._path(number)
        self._file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active = number
        self._sizes[number] = 0
        # fsync the directory so the new segment's name survives a crash with its content.
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- replay --------------------------------------------------------------------------------
    def peek(self) -> Entry | None:
        """The oldest batch not yet replayed, or None."""
        if not self._records:
            return None
        rec = self._records[0]
        with self._path(rec.segment).open("rb") as f:
            f.seek(rec.offset + _HEADER.size)
            payload = f.read(rec.length)
        return Entry(rec.segment, rec.offset, rec.created, payload)

    def pop(self, entry: Entry) -> None:
        """Forget the oldest batch (it is in InfluxDB); delete its segment when nothing else is in it."""
        rec = self._records[0]
        if (rec.segment, rec.offset) != (entry.segment, entry.offset):
            raise ValueError("pop() must be given the entry peek() returned")
        self._records.popleft()
        self._bytes -= rec.length + _HEADER.size
        if self._records and self._records[0].segment == rec.segment:
            return
        if rec.segment == self._active:
            if self._file is not None:
                os.close(self._file)
            self._file = None
            self._active = None
        self._path(rec.segment).unlink(missing_ok=True)
        self._sizes.pop(rec.segment, None)

    def close(self) -> None:
        """Close the active segment (its records stay for the next start)."""
        if self._file is not None:
            os.close(self._file)
            self._file = None
            self._active = None

    # -- recovery ------------------------------------------------------------------------------
    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}{SEGMENT_SUFFIX}"

    def _recover(self) -> None:
        for path in sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}")):
            try:
                number = int(path.name[: -len(SEGMENT_SUFFIX)])
            except ValueError:
                log.warning("spool: ignoring unexpected file %s", path)
                continue
            data = path.read_bytes()
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, crc, created = _HEADER.unpack_from(data, offset)
                start = offset + _HEADER.size
                payload = data[start:start + length]
                if len(payload) < length or zlib.crc32(payload) != crc:
                    break
                self._records.append(_Record(number, offset, length, created))
                self._bytes += _HEADER.size + length
                offset = start + length
            if offset < len(data):
                self.truncated_bytes += len(data) - offset
                log.error("spool: segment %s has %d unreadable bytes after offset %d (a torn write); cut off",
                          path.name, len(data) - offset, offset)
                with path.open("r+b") as f:
                    f.truncate(offset)
            if offset == 0:
                path.unlink()
                continue
            self._sizes[number] = offset
        self.recovered_records = len(self._records)
        if self._records:
            log.warning("spool: %d batches (%d bytes) from an earlier run will be replayed",
                        len(self._records), self._bytes)
