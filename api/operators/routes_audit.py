"""The audit log for admins, and who-am-I for every operator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.operators.audit import AuditLog, audit
from api.operators.auth import AdminDep, ViewerDep

router = APIRouter(prefix="/v1/operator", tags=["operator"])


@router.get("/me", summary="The authenticated operator and role")
def me(request: Request, who: ViewerDep) -> dict[str, str]:
    """Who the credentials belong to (clients use it to check a token)."""
    audit(request, who.name, "me", "-", "ok")
    return {"name": who.name, "role": who.role.value}


@router.get("/audit", summary="The audit log, newest first (admin)")
def audit_log(request: Request, who: AdminDep, *,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              before: Annotated[int | None, Query(ge=1, description="only entries with seq < before (paging)")] = None,
              operator: Annotated[str | None, Query(max_length=64, description="only this operator's entries")] = None,
              action: Annotated[str | None, Query(max_length=64)] = None,
              verify: Annotated[bool, Query(description="check the whole hash chain (reads every row)")] = False,
              ) -> dict[str, Any]:
    """Entries with who, action, target, result, address, detail, time and chain hash; with verify=true
    also whether the hash chain holds (rows checked, the first broken row)."""
    log: AuditLog = request.app.state.audit
    entries = log.entries(limit, before, operator, action)
    chain = None
    if verify:
        checked, broken = log.verify()
        chain = {"rows": checked, "intact": broken is None, "first_broken_seq": broken}
    audit(request, who.name, "audit.read", "audit", "ok", f"{len(entries)} entries" + (", verified" if verify else ""))
    return {"entries": [e.to_json() for e in entries], "chain": chain}
