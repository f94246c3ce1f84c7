"""Where the operator routes find the rules service's files: its rule file, alarm database and control directory.

The control directory (holds, disabled rules, reload requests: rules/operator_control.py) is the
directory of the alarm database, as the rules service's default (``STATE_DIR/rules``), so one
setting (SMARTCITY_ALARMS) points the API at both. Error messages name the setting, never a path.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException, Request

from api.settings import ApiSettings


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def alarms_path(request: Request) -> Path:
    """The rules service's alarm database; 503 if not configured."""
    path = _settings(request).alarms_path
    if not path:
        raise HTTPException(503, "alarms are not configured (SMARTCITY_ALARMS: the rules service's alarm database)")
    return Path(path)


def control_dir(request: Request) -> Path:
    """The rules service's control directory (the alarm database's); 503 if not configured."""
    path = _settings(request).alarms_path
    if not path:
        raise HTTPException(503, "the rules service's control files are not configured (SMARTCITY_ALARMS: "
                                 "the rules service's alarm database, whose directory holds them)")
    return Path(path).parent


def rules_path(request: Request) -> Path:
    """The rule file the rules service runs; 503 if not configured."""
    path = _settings(request).rules_path
    if not path:
        raise HTTPException(503, "the rule file is not configured (SMARTCITY_RULES)")
    return Path(path)
