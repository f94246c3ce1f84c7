"""Operator roles, ordered: a viewer reads, an operator also acts, an admin also manages."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What an operator may do; each role may do everything the ones below it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True if this role may do what needs the role `needed`."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
