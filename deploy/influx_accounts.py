"""The services' InfluxDB accounts: one per service, each with the least privilege InfluxDB 1.x offers.

InfluxDB 1.x grants per database READ, WRITE or ALL (READ and WRITE), plus cluster admin. WRITE
includes ``DELETE`` (checked on 1.6.7: a WRITE account may delete points but not query them), so a
writer is trusted with its database either way; what the split buys is that the readers (the
public API, Grafana) cannot change anything, and no account can touch users, grants or other
databases. No service account is an admin: creating the database, users and grants is the setup's
job (the demo here, an operator in production).

| account | privilege | why |
|---|---|---|
| ingest | ALL | writes readings, commands, acks, status and health; reads its own device_status and
  sequence audits back (the device-status job) |
| rules | WRITE | rule events, alarms and its service_health: it never reads InfluxDB |
| api | READ | the open data and the operators' history: the public-facing account cannot change data |
| api-writer | ALL | only the operators' SensorThings create / update / delete (a delete reads the points
  it keeps back) and alarm acknowledgements, on the API's second client (SMARTCITY_API_INFLUX_WRITE_*) |
| grafana | READ | the dashboards |

Passwords are generated and kept in a 0600 JSON file (the demo's ``<state>/influx-credentials.json``),
reused on the next start because the users live on in InfluxDB's data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from core.private_file import write_private
from deploy.influxdb import Influxd
from deploy.processes import new_password

ADMIN = "admin"
SERVICE_PRIVILEGES: dict[str, str] = {
    "ingest": "ALL",
    "rules": "WRITE",
    "api": "READ",
    "api-writer": "ALL",
    "grafana": "READ",
}


def load_or_create_passwords(path: Path, names: Iterable[str]) -> dict[str, str]:
    """{account: password} from path, with a new password for each name it lacks (the file is rewritten 0600)."""
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in names if n not in known]
    if missing or not path.exists():
        known.update({n: new_password() for n in missing})
        write_private(path, json.dumps(known, indent=1, sort_keys=True) + "\n")
    return known


def ensure_accounts(server: Influxd, database: str, passwords: Mapping[str, str],
                    privileges: Mapping[str, str] = SERVICE_PRIVILEGES) -> None:
    """Create (or reset the password of) each account and grant it exactly its privilege on database."""
    for user, privilege in privileges.items():
        password = passwords[user].replace("\\", "\\\\").replace("'", "\\'")
        try:
            server.admin_query(f"CREATE USER \"{user}\" WITH PASSWORD '{password}'")
        except RuntimeError as exc:
            if "user already exists" not in str(exc):
                raise
            server.admin_query(f"SET PASSWORD FOR \"{user}\" = '{password}'")
        # REVOKE first: a grant widened by hand (or by an older setup) is narrowed again.
        server.admin_query(f'REVOKE ALL ON "{database}" FROM "{user}"')
        server.admin_query(f'GRANT {privilege} ON "{database}" TO "{user}"')
