"""`smartcity restore BACKUP`: a backup (directory or .tar) back into the services' places (docs/backup.md).

    smartcity restore /var/backups/smartcity/2026-12-02.tar [--force] [--only PART ...]

Stop the services first. Every file is checked against the manifest before anything is touched;
existing state is replaced only with --force. Exit status 0: restored and verified; 1: refused
(damaged backup, existing state, a running rules worker) or a check after the restore failed;
2: the backup cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.backup import PART_NAMES, BackupError
from deploy.backup_cli import add_location_arguments, locations_from_args, private_files, say
from deploy.backup_influx import InfluxBackupError
from deploy.backup_restore import restore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the restore subcommand."""
    parser.add_argument("backup", type=Path, help="a backup directory or .tar archive of `smartcity backup`")
    parser.add_argument("--force", action="store_true", help="replace existing state (stop the services first)")
    parser.add_argument("--only", action="append", choices=PART_NAMES, default=None,
                        help="restore only this part (repeatable; default: every part in the backup)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where an archive is unpacked (default: the system's temporary directory)")
    add_location_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Restore; see the module's docstring for the exit status."""
    try:
        with private_files():
            return restore(args.backup, locations_from_args(args), say, force=args.force,
                           only=set(args.only) if args.only else None, work_dir=args.work_dir,
                           influx_timeout=args.influx_timeout)
    except (BackupError, InfluxBackupError, OSError) as exc:
        print(f"smartcity restore: {exc}", file=sys.stderr)
        return 2
