"""The runtime registry: SQLAlchemy tables for the published metadata.

Each process keeps one registry. ``refresh`` costs one tiny query (the
metadata generation, bumped by every publish); only when it moved does the
registry look at which version each app is at. Models and tables are built
lazily, the first time someone asks, and cached by (app, seq), so a request
never re-parses metadata that has not changed, and several processes sharing
one database all see a publish on their next request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table

from . import store
from .errors import NotFound
from .model import AppModel
from .tables import SchemaBuilder, build_schema


@dataclass
class PublishedApp:
    seq: int
    stored: store.StoredVersion
    model: AppModel
    schema: SchemaBuilder

    def table(self, entity: str) -> Table:
        try:
            return self.schema.table(entity)
        except KeyError:
            raise NotFound(f"app '{self.model.name}' has no entity '{entity}'") from None

    def link_table(self, entity: str, field: str) -> Table:
        return self.schema.link_tables[(self.model.name, entity, field)]


class Registry:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.generation: int | None = None
        self.current: dict[str, int] = {}
        self._built: dict[tuple[str, int], PublishedApp] = {}
        self._lock = threading.Lock()

    def refresh(self, conn: Connection | None = None) -> bool:
        """Catch up with publishes made anywhere; True when something changed."""
        if conn is None:
            with self.engine.connect() as conn:
                return self.refresh(conn)
        generation = store.generation(conn)
        if generation == self.generation:
            return False
        current = store.current_seqs(conn)
        with self._lock:
            self.current, self.generation = current, generation
            # Old versions stay cached only while some app still uses them.
            self._built = {
                key: app for key, app in self._built.items() if current.get(key[0]) == key[1]
            }
        return True

    def app_names(self) -> list[str]:
        return sorted(self.current)

    def app(self, name: str, conn: Connection | None = None) -> PublishedApp:
        seq = self.current.get(name)
        if seq is None:
            raise NotFound(f"there is no app named '{name}'")
        key = (name, seq)
        built = self._built.get(key)
        if built is None:
            built = self._build(name, seq, conn)
            with self._lock:
                self._built[key] = built
        return built

    def table(self, app: str, entity: str) -> Table:
        return self.app(app).table(entity)

    def _build(self, name: str, seq: int, conn: Connection | None) -> PublishedApp:
        if conn is None:
            with self.engine.connect() as conn:
                return self._build(name, seq, conn)
        stored = store.at_seq(conn, name, seq)
        model = AppModel.from_document(stored.document, external=self._external)
        return PublishedApp(
            seq, stored, model, build_schema(model, stored.archive, self.engine.dialect.name)
        )

    def _external(self, name: str) -> AppModel | None:
        try:
            return self.app(name).model
        except NotFound:
            return None
