"""Who is acting: the user a request or a script runs as."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    id: int | None
    username: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def context(self) -> dict:
        """The ``$user`` a rule reads."""
        return {"id": self.id, "roles": sorted(self.roles), "username": self.username}


SYSTEM = Actor(id=None, username="system", roles=frozenset({"admin"}))
