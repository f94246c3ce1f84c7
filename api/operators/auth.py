"""Authentication of operators: HTTP Basic (name + password) or ``Authorization: Bearer <token>``.

Both secrets are checked against argon2id hashes of the operators file (users.OperatorsFile).
argon2 is slow on purpose (~50 ms and 64 MiB per check), so:

- a successful check is remembered for ``CACHE_SECONDS`` keyed by the SHA-256 of the credential
  (never the credential itself), so an authenticated client pays argon2 once, not per request;
  the cache is emptied whenever the operators file is reloaded, so a removed operator or token
  stops working within the file check interval;
- at most ``MAX_CONCURRENT_VERIFY`` checks run at once, so a flood of wrong passwords cannot
  take all memory (each check allocates argon2's 64 MiB);
- failed logins are throttled per name (or token id) and per client address (throttle.py), and
  a throttled attempt is refused with 429 before any hash is computed.

Every failed and throttled login and every refused (under-privileged) request is audited.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from api.operators import users
from api.operators.audit import audit, client_address
from api.operators.roles import Role
from api.operators.throttle import LoginThrottle
from api.operators.users import Operator, OperatorsFile, split_token

__all__ = ["AdminDep", "Authenticator", "OperatorDep", "Principal", "Role", "ViewerDep", "require"]

CACHE_SECONDS = 60.0
CACHE_MAX = 10_000
MAX_CONCURRENT_VERIFY = 4
REALM = "smartcity operators"
CHALLENGE = f'Basic realm="{REALM}", Bearer realm="{REALM}"'


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated operator."""

    name: str
    role: Role


@lru_cache(maxsize=4)
def _dummy_for(profile: PasswordHasher) -> str:
    return profile.hash("not a password of anyone")


def _dummy_hash() -> str:
    # Checked for unknown names, so that "no such operator" takes as long as "wrong password"
    # (at the cost new hashes are made with).
    return _dummy_for(users.hasher)


class CredentialCache:
    """Recently verified credentials, by SHA-256, for a short time; emptied when the operators change."""

    def __init__(self, ttl: float = CACHE_SECONDS, max_entries: int = CACHE_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._generation = -1
        self._lock = threading.Lock()

    def get(self, key: bytes, generation: int) -> Principal | None:
        """The principal verified under key, if recent and the operators file unchanged since."""
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation
                return None
            hit = self._entries.get(key)
            if hit is None or hit[1] < self._clock():
                return None
            return hit[0]

    def put(self, key: bytes, generation: int, principal: Principal) -> None:
        """Remember a verified credential."""
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation
            self._entries[key] = (principal, self._clock() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def _verify(stored: str | None, secret: str) -> bool:
    try:
        return users.hasher.verify(stored or _dummy_hash(), secret) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


class Authenticator:
    """Checks credentials against the operators file, with the cache and the throttle."""

    def __init__(self, operators: OperatorsFile, throttle: LoginThrottle | None = None,
                 cache: CredentialCache | None = None) -> None:
        self.operators = operators
        self.throttle = throttle or LoginThrottle()
        self.cache = cache or CredentialCache()
        self._verify_slots = threading.BoundedSemaphore(MAX_CONCURRENT_VERIFY)

    def check_password(self, name: str, password: str) -> Principal | None:
        """The operator if name and password are right."""
        ops = self.operators.get()
        op = ops.get(name)
        with self._verify_slots:
            ok = _verify(op.password_hash if op else None, password)
        return Principal(op.name, op.role) if ok and op else None

    def check_token(self, token: str) -> Principal | None:
        """The operator owning token if it is one of the stored ones."""
        parts = split_token(token)
        owner: Operator | None = None
        if parts is not None:
            owner = next((o for o in self.operators.get().values() if parts[0] in o.tokens), None)
        with self._verify_slots:
            ok = _verify(owner.tokens[parts[0]] if owner and parts else None, parts[1] if parts else token)
        return Principal(owner.name, owner.role) if ok and owner else None


_basic = HTTPBasic(auto_error=False, realm=REALM, description="operator name and password")
_bearer = HTTPBearer(auto_error=False, description="an operator token from `smartcity operator token NAME`")


def _unauthorized(detail: str, retry_after: float = 0.0) -> HTTPException:
    headers = {"WWW-Authenticate": CHALLENGE}
    if retry_after > 0:
        headers["Retry-After"] = str(math.ceil(retry_after))
    return HTTPException(401, detail, headers=headers)


def _target(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def authenticate(request: Request, basic: HTTPBasicCredentials | None,
                 bearer: HTTPAuthorizationCredentials | None) -> Principal:
    """The principal of the request's credentials; 401 (missing or wrong), 429 (throttled)."""
    auth: Authenticator = request.app.state.operator_auth
    if basic is None and bearer is None:
        raise _unauthorized("authentication required: HTTP Basic (operator name and password) or a Bearer token")
    address = client_address(request)
    token = bearer.credentials if basic is None and bearer is not None else None
    if basic is not None:
        who: str | None = basic.username[:64]
        key = json.dumps(["basic", basic.username, basic.password]).encode()  # unambiguous: no separator tricks
    else:
        parts = split_token(token or "")
        who = f"token:{parts[0]}" if parts else None
        key = json.dumps(["bearer", token]).encode()
    wait = auth.throttle.wait(who, address)
    if wait > 0:
        suppressed = auth.throttle.audit_refusal(who, address)
        if suppressed is not None:  # one row per name and address per interval, not one per request of a flood
            audit(request, who, "login", _target(request), "throttled",
                  f"retry after {math.ceil(wait)} s" + (f"; {suppressed} more refused since the last row"
                                                        if suppressed else ""))
        raise HTTPException(429, "too many failed logins; try again later",
                            headers={"Retry-After": str(math.ceil(wait))})
    digest = hashlib.sha256(key).digest()
    auth.operators.get()  # reloads a changed file first, so a removed operator's cached login ends now
    generation = auth.operators.generation
    principal = auth.cache.get(digest, generation)
    if principal is None:
        if basic is not None:
            principal = auth.check_password(basic.username, basic.password)
        else:
            principal = auth.check_token(token or "")
        if principal is None:
            delay = auth.throttle.failure(who, address)
            audit(request, who, "login", _target(request), "denied",
                  "wrong name or password" if basic is not None else "unknown token")
            raise _unauthorized("wrong credentials", delay)
        auth.cache.put(digest, generation, principal)
        if who is not None:
            auth.throttle.success(who)
    return principal


def require(role: Role) -> Callable[..., Principal]:
    """A FastAPI dependency giving the authenticated operator, who must have at least `role` (else 403)."""

    def dependency(request: Request,
                   basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
                   bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        principal = authenticate(request, basic, bearer)
        if not principal.role.allows(role):
            audit(request, principal.name, "authorize", _target(request), "forbidden",
                  f"needs role {role.value}, has {principal.role.value}")
            raise HTTPException(403, f"this needs the role {role.value}")
        return principal

    dependency.__name__ = f"require_{role.value}"
    return dependency


ViewerDep = Annotated[Principal, Depends(require(Role.VIEWER))]
OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
