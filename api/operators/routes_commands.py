"""Manual commands to a device or a group, holding the rules off those devices for a set time.

The hold is written to the rules service's control directory (rules/operator_control.py) before
the command is published, so no rule transition can slip in between; holds of devices whose
command the broker did not take are released again.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.operators.audit import audit
from api.operators.auth import OperatorDep, ViewerDep
from api.operators.command_link import CommandLink, CommandNotSentError
from api.operators.control import control_dir
from core.commands import Action, Command, CommandError, parse_command
from core.kinds import KINDS
from core.registry import Device, Registry
from core.topics import ID_PATTERN
from rules.operator_control import Hold, add_holds, read_holds, release_hold

router = APIRouter(prefix="/v1/operator", tags=["operator"])

MAX_HOLD = 7 * 86400.0
COMMAND_TTL = 60.0  # seconds a gateway may still apply the command (its expires_at), as the rules' default
CODE = r"^[A-Za-z0-9_-]{1,32}$"


class CommandRequest(BaseModel):
    """A command to one device, or to every device of a group that accepts the action."""

    model_config = ConfigDict(extra="forbid")
    action: Action
    params: dict[str, Any] = Field(default_factory=dict, max_length=8)
    device: str | None = Field(None, pattern=ID_PATTERN.pattern, max_length=64)
    gemeente: str | None = Field(None, pattern=CODE)
    wijk: str | None = Field(None, pattern=CODE)
    kind: str | None = Field(None, pattern=CODE)
    hold: float = Field(3600.0, ge=0, le=MAX_HOLD,
                        description="seconds the rules send these devices no command for this action (0: none)")


def _targets(req: CommandRequest, registry: Registry) -> list[Device]:
    group = {k: v for k, v in (("gemeente", req.gemeente), ("wijk", req.wijk), ("kind", req.kind)) if v}
    if (req.device is None) == (not group):
        raise HTTPException(400, "give either device or a group (gemeente, wijk and/or kind), not both or neither")
    if req.device is not None:
        device = registry.devices.get(req.device)
        if device is None:
            raise HTTPException(404, f"no device {req.device}")
        if req.action.value not in KINDS[device.kind].actions:
            raise HTTPException(400, f"device {device.id} ({device.kind}) does not accept {req.action.value}")
        return [device]
    if req.kind is not None:
        if req.kind not in KINDS:
            raise HTTPException(400, f"unknown kind {req.kind}")
        if req.action.value not in KINDS[req.kind].actions:
            raise HTTPException(400, f"devices of kind {req.kind} do not accept {req.action.value}")
    found = [d for d in registry.devices.values()
             if all(getattr(d, k) == v for k, v in group.items()) and req.action.value in KINDS[d.kind].actions]
    if not found:
        raise HTTPException(404, f"no device in {', '.join(f'{k} {v}' for k, v in group.items())} accepts "
                                 f"{req.action.value}")
    return sorted(found, key=lambda d: d.id)


def _selector(req: CommandRequest) -> str:
    if req.device:
        return req.device
    return ",".join(f"{k}={v}" for k, v in (("gemeente", req.gemeente), ("wijk", req.wijk), ("kind", req.kind)) if v)


@router.post("/commands", summary="Send a manual command to a device or a group (operator)")
def send_command(request: Request, who: OperatorDep, body: CommandRequest) -> dict[str, Any]:
    """Publish the command to each target device's gateway; the rules leave them alone for `hold` seconds."""
    link: CommandLink | None = request.app.state.command_link
    if link is None:
        raise HTTPException(503, "manual commands are not configured (no MQTT broker: SMARTCITY_MQTT_HOST)")
    devices = _targets(body, request.app.state.registry.get())
    now = time.time()
    origin = f"operator:{who.name}"
    commands = [Command(d.id, body.action, body.params, origin, issued_at=now, expires_at=now + COMMAND_TTL)
                for d in devices]
    try:
        parse_command(commands[0].to_json())  # the checks the edge makes (dim level 0-100, ...)
    except CommandError as exc:
        raise HTTPException(400, str(exc)[:200]) from None
    directory = control_dir(request) if body.hold > 0 else None
    until = now + body.hold
    if directory is not None:
        add_holds(directory, [Hold(c.device, c.action.value, until, origin, c.id) for c in commands], now)
    results = []
    for device, cmd in zip(devices, commands, strict=True):
        try:
            link.send(device.gateway, cmd)
            results.append({"device": device.id, "gateway": device.gateway, "id": cmd.id, "status": "sent"})
        except CommandNotSentError as exc:
            if directory is not None:
                release_hold(directory, cmd.device, cmd.action.value)
            results.append({"device": device.id, "gateway": device.gateway, "id": cmd.id, "status": "not sent",
                            "error": str(exc)})
    sent = sum(r["status"] == "sent" for r in results)
    result = "ok" if sent == len(results) else ("failed" if sent == 0 else "partial")
    audit(request, who.name, "command.send", _selector(body), result,
          f"{body.action.value} {body.params} to {sent}/{len(results)} devices, hold {body.hold:.0f} s")
    if sent == 0:
        raise HTTPException(503, results[0]["error"])
    return {"action": body.action.value, "params": body.params, "origin": origin,
            "hold_until": until if directory is not None else None, "commands": results}


@router.get("/holds", summary="Holds in force: devices the rules leave alone (viewer)")
def list_holds(request: Request, who: ViewerDep) -> dict[str, Any]:
    """Every hold in force, by device and action, with who set it and until when."""
    holds = read_holds(control_dir(request))
    audit(request, who.name, "holds.list", "-", "ok", f"{len(holds)} holds")
    return {"holds": [{"device": h.device, "action": h.action, "until": h.until, "by": h.by, "command": h.command}
                      for _, h in sorted(holds.items())]}


@router.delete("/holds/{device}/{action}", summary="End a hold now: the rules may command the device again")
def end_hold(request: Request, who: OperatorDep,
             device: Annotated[str, Path(pattern=ID_PATTERN.pattern, max_length=64)], action: Action) -> dict[str, Any]:
    """Release the hold on (device, action)."""
    gone = release_hold(control_dir(request), device, action.value)
    audit(request, who.name, "hold.release", f"{device}/{action.value}", "ok" if gone else "not found")
    if gone is None:
        raise HTTPException(404, f"no hold on {device} {action.value}")
    return {"device": device, "action": action.value, "released": True, "was_until": gone.until}
