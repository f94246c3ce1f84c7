"""The rules: list them, enable or disable one (persistently), ask the rules service to reload.

Enabling and disabling write rules/operator_control.py's overrides file; every rules worker
reloads when it changes (within its watch interval, 1 s), leaving disabled rules out. A disabled
rule's open alarms are cleared by that reload (no slot of it remains to clear them later), and
when it is enabled again its slots start afresh (inactive).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam

from api.operators.audit import audit
from api.operators.auth import OperatorDep, ViewerDep
from api.operators.control import control_dir, rules_path
from core.errors import ConfigError
from rules.operator_control import read_disabled, request_reload, set_enabled
from rules.rule_file import load_rules
from rules.rule_model import RuleSet

router = APIRouter(prefix="/v1/operator", tags=["operator"])

RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
RuleName = Annotated[str, PathParam(pattern=RULE_NAME)]


def _load(path: Path) -> RuleSet:
    try:
        return load_rules(path)
    except (ConfigError, OSError) as exc:
        # The message names the file by its full path: show only its name.
        text = str(exc).replace(str(path), path.name)
        raise HTTPException(422, f"the rule file does not load: {text[:300]}") from None


@router.get("/rules", summary="The rules of the rule file, with whether each is enabled (viewer)")
def list_rules(request: Request, who: ViewerDep) -> dict[str, Any]:
    """Each rule's name, description, kind, grouping and enabled state (who disabled it, when)."""
    ruleset = _load(rules_path(request))
    disabled = read_disabled(control_dir(request))
    out = []
    for rule in ruleset.rules:
        off = disabled.get(rule.name)
        out.append({"name": rule.name, "description": rule.description, "kind": rule.kind,
                    "group_by": rule.group_by, "urgent": rule.urgent, "enabled": off is None,
                    "disabled_by": (off or {}).get("by"), "disabled_at": (off or {}).get("at")})
    audit(request, who.name, "rules.list", "-", "ok", f"{len(out)} rules")
    return {"rules": out}


def _toggle(request: Request, who: str, name: str, enabled: bool) -> dict[str, Any]:
    verb = "enable" if enabled else "disable"
    names = {r.name for r in _load(rules_path(request)).rules}
    if name not in names:
        audit(request, who, f"rule.{verb}", name, "not found")
        raise HTTPException(404, f"no rule {name} in the rule file")
    changed = set_enabled(control_dir(request), name, enabled, who)
    audit(request, who, f"rule.{verb}", name, "ok" if changed else "unchanged")
    return {"name": name, "enabled": enabled, "changed": changed}


@router.post("/rules/{name}/enable", summary="Enable a rule (operator)")
def enable_rule(request: Request, who: OperatorDep, name: RuleName) -> dict[str, Any]:
    """Enable a disabled rule; the rules service picks it up at once (its slots start inactive)."""
    return _toggle(request, who.name, name, True)


@router.post("/rules/{name}/disable", summary="Disable a rule (operator)")
def disable_rule(request: Request, who: OperatorDep, name: RuleName) -> dict[str, Any]:
    """Disable a rule persistently: the rules service leaves it out, also after restarts."""
    return _toggle(request, who.name, name, False)


@router.post("/rules/reload", summary="Check the rule file and ask the rules service to reload it (operator)")
def reload_rules(request: Request, who: OperatorDep) -> dict[str, Any]:
    """Refused (422, with the reason) if the file does not load: the service would keep its old rules."""
    try:
        ruleset = _load(rules_path(request))
    except HTTPException as exc:
        audit(request, who.name, "rules.reload", "rule file", "invalid", str(exc.detail))
        raise
    request_reload(control_dir(request))
    audit(request, who.name, "rules.reload", "rule file", "ok", f"{len(ruleset.rules)} rules")
    return {"requested": True, "rules": len(ruleset.rules)}
