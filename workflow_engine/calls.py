"""One engine call: its transaction, who acts, and the moment it happens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Table

from metamodel.model import EntityModel
from records import access
from records.actor import Actor
from records.rule_data import rule_data
from records.runtime import EntityRuntime
from records.service import Records

from . import statements

if TYPE_CHECKING:
    from .notifications import Notice


@dataclass
class Call:
    conn: Connection
    records: Records
    actor: Actor
    now: dt.datetime
    # The notifications saved so far, delivered once the transaction has committed.
    sent: list[Notice] = field(default_factory=list)
    # Notification rows not written yet: :meth:`flush` writes them in one statement.
    unsaved: list[dict] = field(default_factory=list)
    # Usernames this call has read already (id -> username).
    names: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.actor.id is not None:
            self.names[self.actor.id] = self.actor.username

    @property
    def is_postgresql(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def runtime(self, app: str, entity: str) -> EntityRuntime:
        return self.records.runtime(app, entity, self.conn)

    def tables_for(self, entity: EntityModel) -> Table:
        return self.records.tables_for(entity)

    def context(self) -> dict:
        """What ``$user``, ``$now`` and ``$today`` mean to a rule in this call."""
        return {"user": self.actor.context(), "now": self.now, "today": self.now.date()}

    def may(self, verb: str, runtime: EntityRuntime, record: dict) -> bool:
        """May the actor ``verb`` the record? Row rules follow references, as in ``Records``."""

        def data_for(rule):
            return rule_data(self.conn, runtime.entity, record, rule, self.tables_for)

        return access.may(self.actor, runtime.entity, verb, record, self.context(), data_for)

    def require(self, verb: str, runtime: EntityRuntime, record: dict) -> None:
        if not self.may(verb, runtime, record):
            raise access.refused(runtime.entity, verb, record["id"])

    def load(self, runtime: EntityRuntime, record_id: int, *, lock: bool = False) -> dict:
        return self.records._load(self.conn, runtime, record_id, lock=lock)

    def serialise(self, runtime: EntityRuntime, record: dict) -> dict:
        return self.records.serialise_many(self.conn, self.actor, runtime, [record])[0]

    def usernames(self, ids: Iterable[int | None]) -> dict[int, str]:
        """The usernames of ``ids``; only the ones this call has not seen yet are read."""
        wanted = {i for i in ids if i is not None}
        missing = wanted - self.names.keys()
        if missing:
            self.names.update(
                self.conn.execute(statements.names_of, {statements.IDS: sorted(missing)}).all()
            )
        # In id order, as the query used to return them.
        return {i: self.names[i] for i in sorted(wanted) if i in self.names}

    def flush(self) -> None:
        """Write the notifications kept so far (one INSERT for all of them)."""
        if self.unsaved:
            self.conn.execute(statements.insert_notifications, self.unsaved)
            self.unsaved = []
