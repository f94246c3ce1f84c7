"""`smartcity audit list`: the API's audit log, newest first, and whether its hash chain holds.

    smartcity audit list [--limit N] [--operator NAME] [--action ACTION] [--before SEQ] [--verify]

With --verify the whole chain is checked first; exit status 1 if it is broken (the first broken
row is named: from there on rows were changed, removed or inserted outside the API).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from api.operators.audit import AuditError, AuditLog
from api.operators.cli import default_state_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the audit subcommand."""
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="the newest entries first")
    listing.add_argument("--state-dir", default=default_state_dir(),
                         help="the API's state directory (default: $SMARTCITY_API_STATE_DIR or STATE_DIR/api)")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--operator", default=None, help="only this operator's entries")
    listing.add_argument("--action", default=None, help="only this action (e.g. login, command.send)")
    listing.add_argument("--before", type=int, default=None, help="only entries with seq < BEFORE (paging)")
    listing.add_argument("--verify", action="store_true", help="check the hash chain (exit 1 if broken)")


def run(args: argparse.Namespace) -> int:
    """Print the entries; returns 1 if --verify found the chain broken, 2 if the log cannot be opened."""
    path = Path(args.state_dir) / "audit.sqlite"
    if not path.exists():
        print(f"no audit log yet ({path} does not exist)")
        return 0
    try:
        log = AuditLog(path)
    except AuditError as exc:
        print(f"smartcity audit: {exc}", file=sys.stderr)
        return 2
    status = 0
    try:
        if args.verify:
            checked, broken = log.verify()
            if broken is None:
                print(f"hash chain intact: {checked} entries")
            else:
                print(f"hash chain BROKEN at seq {broken} (entries 1-{checked} are intact)")
                status = 1
        print(f"{'seq':>6} {'time':19} {'who':20} {'action':22} {'result':10} {'from':15} target / detail")
        for e in log.entries(args.limit, args.before, args.operator, args.action):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time_us / 1e6))
            print(f"{e.seq:>6} {when:19} {(e.who or '-')[:20]:20} {e.action[:22]:22} {e.result[:10]:10} "
                  f"{e.address[:15]:15} {e.target}{'  ' + e.detail if e.detail else ''}")
    finally:
        log.close()
    return status
