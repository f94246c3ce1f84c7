"""Provisioning and revoking gateways' broker accounts (admin): the API side of `smartcity gateway add|revoke`.

A gateway must be in the registry (the source of truth for what exists in the field) to get an
account. The password is generated here and shown once, in the response; only its hash is kept.
Service accounts (ingest, rules, api, ...) are not gateways and cannot be touched from here.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from api.operators.audit import audit
from api.operators.auth import AdminDep
from core.topics import ID_PATTERN
from deploy.broker_accounts import BrokerAccountError, BrokerAccounts
from deploy.mosquitto import SERVICE_GRANTS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/operator", tags=["operator"])

GatewayId = Annotated[str, PathParam(pattern=ID_PATTERN.pattern)]


class ProvisionRequest(BaseModel):
    """The gateway to give a broker account."""

    model_config = ConfigDict(extra="forbid")
    gateway: str = Field(pattern=ID_PATTERN.pattern)


def _accounts(request: Request) -> BrokerAccounts:
    accounts: BrokerAccounts | None = request.app.state.broker_accounts
    if accounts is None:
        raise HTTPException(503, "gateway provisioning is not configured (SMARTCITY_MOSQUITTO_PASSWORD_FILE)")
    return accounts


def _check_gateway(request: Request, who: str, action: str, gateway: str) -> None:
    if gateway in SERVICE_GRANTS:
        audit(request, who, action, gateway, "refused", "a service account")
        raise HTTPException(409, f"{gateway} is a service account, not a gateway")
    if gateway not in request.app.state.registry.get().gateways:
        audit(request, who, action, gateway, "not found")
        raise HTTPException(404, f"no gateway {gateway} in the registry")


def _reload(request: Request, accounts: BrokerAccounts, who: str, action: str, gateway: str) -> bool:
    try:
        return accounts.reload_broker()
    except BrokerAccountError as exc:
        log.error("%s", exc)
        audit(request, who, action, gateway, "partial", "account changed, broker not reloaded")
        raise HTTPException(503, "the account was changed but the broker could not be told to reload") from None


@router.get("/gateways", summary="The registry's gateways and whether each has a broker account (admin)")
def list_gateways(request: Request, who: AdminDep) -> dict[str, Any]:
    """Gateway id, name, gemeente and whether the broker's password file has its account."""
    accounts = _accounts(request)
    try:
        users = accounts.users()
    except BrokerAccountError as exc:
        log.error("%s", exc)
        raise HTTPException(503, "the broker's password file cannot be read") from None
    registry = request.app.state.registry.get()
    audit(request, who.name, "gateways.list", "-", "ok")
    return {"gateways": [{"id": g.id, "name": g.name, "gemeente": g.gemeente, "provisioned": g.id in users}
                         for g in sorted(registry.gateways.values(), key=lambda g: g.id)]}


@router.post("/gateways", status_code=201, summary="Provision a gateway's broker account (admin)")
def provision(request: Request, who: AdminDep, body: ProvisionRequest) -> dict[str, Any]:
    """Generate the gateway's MQTT password (shown only in this response) and reload the broker."""
    accounts = _accounts(request)
    _check_gateway(request, who.name, "gateway.provision", body.gateway)
    try:
        password = accounts.add(body.gateway)
    except BrokerAccountError as exc:
        log.error("%s", exc)
        audit(request, who.name, "gateway.provision", body.gateway, "failed", "password file unavailable")
        raise HTTPException(503, "the broker's password file cannot be changed") from None
    if password is None:
        audit(request, who.name, "gateway.provision", body.gateway, "conflict", "already provisioned")
        raise HTTPException(409, f"gateway {body.gateway} already has a broker account; revoke it first")
    reloaded = _reload(request, accounts, who.name, "gateway.provision", body.gateway)
    audit(request, who.name, "gateway.provision", body.gateway, "ok",
          "broker reloaded" if reloaded else "broker not signalled (no pid file configured)")
    return {"gateway": body.gateway, "username": body.gateway, "password": password, "broker_reloaded": reloaded}


@router.delete("/gateways/{gateway}", summary="Revoke a gateway's broker account (admin)")
def revoke(request: Request, who: AdminDep, gateway: GatewayId) -> dict[str, Any]:
    """Remove the account and reload the broker, which disconnects the gateway if it is connected."""
    accounts = _accounts(request)
    if gateway in SERVICE_GRANTS:
        audit(request, who.name, "gateway.revoke", gateway, "refused", "a service account")
        raise HTTPException(409, f"{gateway} is a service account, not a gateway")
    try:
        removed = accounts.remove(gateway)
    except BrokerAccountError as exc:
        log.error("%s", exc)
        audit(request, who.name, "gateway.revoke", gateway, "failed", "password file unavailable")
        raise HTTPException(503, "the broker's password file cannot be changed") from None
    if not removed:
        audit(request, who.name, "gateway.revoke", gateway, "not found")
        raise HTTPException(404, f"gateway {gateway} has no broker account")
    reloaded = _reload(request, accounts, who.name, "gateway.revoke", gateway)
    audit(request, who.name, "gateway.revoke", gateway, "ok",
          "broker reloaded" if reloaded else "broker not signalled (no pid file configured)")
    return {"gateway": gateway, "revoked": True, "broker_reloaded": reloaded}
