"""`smartcity dashboards build|check|push`: regenerate, validate and upload the Grafana dashboards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards.build import JSON_DIR, build_all, write_all
from dashboards.check import check_all, check_committed, load_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-actions build, check and push."""
    parser.add_argument("action", choices=["build", "check", "push"], help="what to do with the dashboards")
    parser.add_argument("--dir", type=Path, default=JSON_DIR, help="the dashboard JSON directory")
    parser.add_argument("--url", default=None,
                        help="push: Grafana's base URL (default $SMARTCITY_GRAFANA_URL or http://127.0.0.1:3000)")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="push: file with a service-account token (default $SMARTCITY_GRAFANA_TOKEN, "
                             "or the file $SMARTCITY_GRAFANA_TOKEN_FILE names)")
    parser.add_argument("--folder", default=None, help="push: title of the Grafana folder (default: push's folder)")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; exit status 1 on validation problems, push's EXIT_* codes (dashboards.push)."""
    if args.action == "build":
        for path in write_all(args.dir):
            print(path)
        return 0
    if args.action == "check":
        problems = check_all(load_dir(args.dir)) + check_committed(args.dir, build_all())
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{len(list(args.dir.glob('*.json')))} dashboards valid and up to date")
        return 1 if problems else 0
    from dashboards.push import PushError, load_dashboards, push_command  # noqa: PLC0415 (httpx only when pushing)

    try:
        dashboards = load_dashboards(args.dir)
        token = args.token_file.read_text().strip() if args.token_file is not None else None
    except (PushError, OSError) as exc:
        print(f"push failed: {exc}", file=sys.stderr)
        return 2
    options = {"folder_title": args.folder} if args.folder else {}
    return push_command(args.url, token, dashboards, **options)
