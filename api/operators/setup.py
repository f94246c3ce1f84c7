"""The operators' part of the API: authentication, the audit log and the /v1/operator routes.

State opened at start-up (app.state): ``audit`` (the audit log), ``operator_auth`` (the operators
file, credential cache and login throttle), ``command_link`` (the MQTT link for manual commands,
None without a broker) and ``broker_accounts`` (gateway provisioning, None unless the broker's
password file is configured: SMARTCITY_MOSQUITTO_PASSWORD_FILE, and SMARTCITY_MOSQUITTO_PID_FILE
for the reload signal).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI

from api.operators import routes_alarms, routes_audit, routes_commands, routes_gateways, routes_history, routes_rules
from api.operators.audit import AuditLog
from api.operators.auth import Authenticator
from api.operators.command_link import CommandLink
from api.operators.users import OperatorsFile
from api.settings import ApiSettings
from deploy.broker_accounts import BrokerAccounts

AUDIT_FILE = "audit.sqlite"


def routers() -> list[APIRouter]:
    """The routers of this part."""
    return [routes_audit.router, routes_commands.router, routes_history.router, routes_rules.router,
            routes_alarms.router, routes_gateways.router]


def broker_accounts(settings: ApiSettings) -> BrokerAccounts | None:
    """Gateway provisioning's files, from the settings or SMARTCITY_MOSQUITTO_PASSWORD_FILE / _PID_FILE."""
    password_file = getattr(settings, "mosquitto_password_file", None) or os.environ.get(
        "SMARTCITY_MOSQUITTO_PASSWORD_FILE")
    pid_file = getattr(settings, "mosquitto_pid_file", None) or os.environ.get("SMARTCITY_MOSQUITTO_PID_FILE")
    if not password_file:
        return None
    return BrokerAccounts(Path(password_file), Path(pid_file) if pid_file else None)


def open_state(app: FastAPI, settings: ApiSettings) -> Callable[[], None]:
    """Open the audit log, the operators file and the command link; returns the function that closes them."""
    operators = OperatorsFile(Path(settings.operators_path) if settings.operators_path else None)
    audit_log = AuditLog(settings.state_path / AUDIT_FILE)
    app.state.audit = audit_log
    app.state.operator_auth = Authenticator(operators)
    app.state.broker_accounts = broker_accounts(settings)
    link = CommandLink(settings.mqtt) if settings.mqtt is not None else None
    app.state.command_link = link
    if link is not None:
        link.start()

    def close() -> None:
        if link is not None:
            link.stop()
        audit_log.close()

    return close
