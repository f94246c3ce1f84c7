"""The machine's busy CPU over a benchmark phase, so that what other processes used in it shows ("others").

Other sessions share this 2-core machine: a phase whose "others" is large was measured on a busy machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used so far (all cores' busy time, /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields)
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuWindow:
    """The machine's busy CPU over a phase's timed window, so that what other processes used shows.

    close(cpu) adds cpu["others"]: the machine's busy seconds less this script's and the processes in cpu
    (the bare phases' "writer" is this script).
    """

    def __init__(self) -> None:
        self.busy0, self.own0 = machine_busy_seconds(), time.process_time()
        self.busy: float | None = None
        self.own = 0.0

    def stop(self) -> None:
        self.busy, self.own = machine_busy_seconds() - self.busy0, time.process_time() - self.own0

    def close(self, cpu: dict[str, float]) -> None:
        if self.busy is None:
            self.stop()
        assert self.busy is not None
        tracked = sum(v for k, v in cpu.items() if k not in ("writer", "others"))
        cpu["others"] = max(0.0, self.busy - self.own - tracked)
