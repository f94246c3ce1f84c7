"""The fault suite's report table, from the JSON rows the tests write (conftest.py).

    python -m tests.faults.report /tmp/pytest-of-root/pytest-current/faults-report.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

COLUMNS = ("fault", "runs", "accepted by edge", "published (tap)", "stored", "stored - accepted",
           "duplicates (redelivered batches)", "commands sent", "final acks",
           "no / conflicting / twice-stored acks",
           "gaps (seq; lost frames counted; frames missing in stored timeline)", "time to recover (s)")


def _total(row: dict[str, Any], key: str) -> int:
    return sum(int(v) for v in row.get(key, {}).values())


def table(rows: list[dict[str, Any]]) -> str:
    """One markdown line per fault, its runs summed (recovery times: each run's, comma-separated)."""
    by_fault: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_fault[r["fault"]].append(r)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for fault, runs in by_fault.items():
        acks: dict[str, int] = defaultdict(int)
        for r in runs:
            for k, v in r["final_acks"].items():
                acks[k] += v
        recover = ", ".join("-" if r["recover_s"] is None else f"{r['recover_s']:.1f}" for r in runs)
        cells = [fault, str(len(runs)), str(sum(_total(r, "accepted") for r in runs)),
                 str(sum(_total(r, "published") for r in runs)),
                 str(sum(_total(r, "stored") for r in runs)),
                 str(sum(_total(r, "stored") - _total(r, "accepted") for r in runs)),
                 str(sum(_total(r, "seq_duplicates") for r in runs)),
                 str(sum(r["commands"] for r in runs)),
                 ", ".join(f"{k} {v}" for k, v in sorted(acks.items())) or "none",
                 f"{sum(len(r['commands_without_ack']) for r in runs)} / "
                 f"{sum(len(r['commands_with_several_acks']) for r in runs)} / "
                 f"{sum(len(r.get('acks_stored_twice', {})) for r in runs)}",
                 f"{sum(_total(r, 'seq_gaps') for r in runs)}; {sum(_total(r, 'lost_frames') for r in runs)}; "
                 f"{sum(_total(r, 'missing_frames') for r in runs)}",
                 recover]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['fault']} run {r['run']}: {n}" for r in rows for n in r.get("notes", [])]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    print(table(json.loads(Path(argv[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
