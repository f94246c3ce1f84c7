"""The ingest spool on a file system that fills up in the middle of a record (a short write).

Found by test_disk_full.py: after the spool's disk was full, the ingest replayed a batch with NUL
bytes in it, InfluxDB refused it with an error that httpx could not even parse as a header, the
ingest took that for "InfluxDB unreachable" and retried the same batch forever: nothing more was
stored. The cause: os.write on a nearly full disk writes part of a record and returns the count
without raising; append() took the record as written whole, and the next append's ENOSPC handler
ftruncate()d the segment to an offset beyond its real end, padding it with zeros.
"""

from __future__ import annotations

import os

import pytest

from ingest.spool import Spool
from tests.faults.test_disk_full import fill, tmpfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def test_a_short_write_on_a_full_disk_leaves_only_whole_records(tmp_path):
    with tmpfs(tmp_path / "spool-tmpfs", size="256k") as mount:
        spool = Spool(mount / "spool")
        stored: list[bytes] = []
        for i in range(3):
            payload = f"m,device=d{i} v={i} {i}\n".encode() * 50
            spool.append(payload)
            stored.append(payload)
        fill(mount)
        # Give back one page: less room than the next record needs, so its write is cut short.
        filler = mount / "filler"
        os.truncate(filler, filler.stat().st_size - 4096)
        refused = 0
        for i in range(3, 6):
            payload = f"m,device=d{i} v={i} {i}\n".encode() * 400  # ~8 KB, more than the page left
            try:
                spool.append(payload)
                stored.append(payload)
            except OSError:
                refused += 1  # not acknowledged by the ingest: the broker keeps the messages
        assert refused, "the disk never refused a record: the test did not fill it"
        filler.unlink()
        last = b"m,device=after v=1 1\n"
        spool.append(last)
        stored.append(last)
        # What a replay reads, in this run and after a restart, is exactly what append() accepted.
        replayed = []
        while (entry := spool.peek()) is not None:
            replayed.append(entry.payload)
            spool.pop(entry)
        assert replayed == stored
        spool.close()
