"""The edge's durable queue: order, persisted seq, survival of a crash, bounds that count what goes."""

import subprocess
import sys
import time

from core import senml
from core.senml import Reading
from edge.durable_queue import DurableQueue


def readings(n, start=0, device="vs-sl-101"):
    return [Reading(device, "power", float(i), 1_700_000_000.0 + i, "W") for i in range(start, start + n)]


def test_readings_are_sealed_into_numbered_batches_in_order(tmp_path):
    q = DurableQueue(tmp_path / "q.sqlite")
    q.extend(readings(5))
    q.extend([Reading("vs-oc-101", "presence", True, 1_700_000_010.0), Reading("d", "state", "on", 1.0)])
    first, second = q.seal(4), q.seal(4)
    assert q.seal(4) is None
    assert (first.seq, first.readings, second.seq, second.readings) == (0, 4, 1, 3)
    got = senml.decode(first.payload).readings + senml.decode(second.payload).readings
    assert [r.value for r in got] == [0.0, 1.0, 2.0, 3.0, 4.0, True, "on"]
    assert senml.decode(second.payload).seq == 1
    assert [b.seq for b in q.sealed()] == [0, 1] and [b.seq for b in q.sealed(after=0)] == [1]
    assert len(q) == 7
    assert q.acknowledged([0]) == 4
    assert [b.seq for b in q.sealed()] == [1] and len(q) == 3


def test_seq_and_unsent_readings_survive_a_restart(tmp_path):
    q = DurableQueue(tmp_path / "q.sqlite")
    q.extend(readings(3))
    q.seal(2)
    q.acknowledged([0])
    q.extend(readings(2, start=3))
    q.close()
    again = DurableQueue(tmp_path / "q.sqlite")
    assert again.next_seq == 1 and len(again) == 3
    batch = again.seal(10)
    assert batch.seq == 1 and [r.value for r in senml.decode(batch.payload).readings] == [2.0, 3.0, 4.0]


def test_a_sigkill_loses_nothing_that_was_accepted(tmp_path):
    path = tmp_path / "q.sqlite"
    code = ("import sys, os; from edge.durable_queue import DurableQueue; from core.senml import Reading\n"
            "q = DurableQueue(sys.argv[1])\n"
            "for i in range(200):\n"
            "    q.extend([Reading('d', 'power', float(i), 1.0 + i)])\n"
            "    if i == 150: q.seal(100)\n"
            "print('accepted', flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == -9 and "accepted" in proc.stdout
    q = DurableQueue(path)
    assert len(q) == 200 and q.next_seq == 1
    values = [r.value for b in q.sealed() for r in senml.decode(b.payload).readings]
    values += [r.value for r in senml.decode(q.seal(1000).payload).readings]
    assert values == [float(i) for i in range(200)]


def test_when_full_the_oldest_batches_go_first_and_are_counted(tmp_path):
    q = DurableQueue(tmp_path / "q.sqlite", max_readings=10)
    q.extend(readings(6))
    q.seal(3)
    q.seal(3)
    q.extend(readings(6, start=6))  # 12 > 10: the oldest whole batch (3 readings) goes
    assert (q.dropped, len(q)) == (3, 9)
    assert [b.seq for b in q.sealed()] == [1]
    q.extend(readings(5, start=12))  # 14 > 10: batch 1 goes, then one pending reading
    assert (q.dropped, len(q)) == (7, 10)
    assert [r.value for r in senml.decode(q.seal(100).payload).readings] == [float(i) for i in range(7, 17)]


def test_readings_that_waited_longer_than_max_age_go_and_are_counted(tmp_path):
    q = DurableQueue(tmp_path / "q.sqlite", max_age=60)
    q.extend(readings(2))
    q.seal(1)
    assert q.expire(now=time.time() + 30) == 0
    assert q.oldest_age() < 5
    assert q.expire(now=time.time() + 120) == 2
    assert (q.dropped, len(q)) == (2, 0)


def test_a_non_finite_value_never_enters_the_queue(tmp_path):
    """One inf in a batch would make every seal of it fail (JSON has no inf): refused and counted instead."""
    q = DurableQueue(tmp_path / "q.sqlite")
    q.extend([Reading("d", "power", float("inf"), 1.0), Reading("d", "power", 2.0, 2.0)])
    assert (len(q), q.refused) == (1, 1)
    assert [r.value for r in senml.decode(q.seal(10).payload).readings] == [2.0]
