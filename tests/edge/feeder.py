"""A gateway agent minus its ports, for fault tests: the real uplink and durable queue, fed a known stream.

python -m tests.edge.feeder QUEUE DEVICE COUNT_FILE: every 20 ms one power reading of DEVICE whose value
is its index and whose time is t0 + index ms; after each one is accepted by the queue the count of
accepted readings is written to COUNT_FILE. SIGTERM stops it cleanly. MQTT from SMARTCITY_MQTT_*.
"""

import signal
import sys
import threading
import time
from pathlib import Path

from core.senml import Reading
from core.settings import mqtt_from_env
from edge.durable_queue import DurableQueue
from edge.uplink import Uplink

T0 = 1_700_000_000.0


def main() -> None:
    queue_path, device, count_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    queue = DurableQueue(queue_path)
    uplink = Uplink("gw-vs-01", mqtt_from_env(), queue, lambda _c: None, flush_interval=0.2)
    uplink.start()
    i = 0
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline:
        queue.extend([Reading(device, "power", float(i), T0 + i / 1000, "W")])
        i += 1
        tmp = count_file.with_suffix(".tmp")
        tmp.write_text(str(i))
        tmp.replace(count_file)  # atomic: the test never reads a half-written count
        stop.wait(0.02)
    uplink.stop()
    queue.close()


if __name__ == "__main__":
    main()
