"""Importing a preset as an app of the same name: publish it, or upgrade the app, with sample data.

A new app gets the preset as shipped. An app that exists gets the preset's
changes merged into it (:mod:`presets.merge`): what its users changed is kept,
and where they and the preset changed the same thing, their value is kept and
the conflict reported. Conflicts do not block an import; only a merged document
that does not validate (or a plan the planner refuses) does.

Everything happens in one transaction: the publish, the sample records and the
record of the import (:mod:`presets.provenance`) commit together or not at all,
so a refused sample record leaves no app, no table and no version behind.
Importing the same preset again changes nothing: the merge finds nothing new
and sample data goes in once per app. :func:`plan_import` runs the whole import
and rolls it back, so a dry run sees exactly what the import would do, down to
the sample records that would be refused.

Pure Python: no Flask, for the ``crm`` command and the admin pages.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from metamodel import store
from metamodel.db import IMMEDIATE
from metamodel.errors import InvalidDocument, Problem
from metamodel.publish import Outcome, apply_document, installed_apps
from metamodel.registry import Registry
from metamodel.validate import validate_document
from records.actor import SYSTEM, Actor
from records.service import Records

from . import provenance
from .catalog import PresetError, import_sample_data, load_preset
from .merge import MergeResult, merge_documents, merged_version

ACTION = "preset"


class ImportRefused(PresetError):
    """A merged document that does not validate; ``merge`` says what went into it."""

    def __init__(self, problems: list[Problem], merge: MergeResult):
        count = len(problems)
        super().__init__(
            f"the app merged with the preset has {count} error{'s' if count != 1 else ''}",
            problems=problems,
        )
        self.merge = merge


@dataclass
class ImportPlan:
    """What an import does (or did): the publish, the merge, the sample records."""

    app: str
    preset_version: str
    # The app's version before the import; None when the import creates the app.
    previous_version: str | None
    document: dict[str, Any]
    outcome: Outcome
    merge: MergeResult | None = None
    # How the merge found the preset version the app came from.
    base: str | None = None
    sample_counts: dict[str, int] = field(default_factory=dict)
    # Why no sample records are (or were) created although they were asked for.
    sample_note: str | None = None
    applied: bool = False

    @property
    def upgrade(self) -> bool:
        return self.previous_version is not None

    @property
    def changed(self) -> bool:
        return self.outcome.changed or bool(self.sample_counts)

    @property
    def version(self) -> str:
        return self.document["version"]


def plan_import(
    engine: Engine,
    source: str | Path | dict,
    *,
    with_sample_data: bool = False,
    actor: Actor = SYSTEM,
    records: Records | None = None,
) -> ImportPlan:
    """What importing ``source`` (a preset name, file or document) would do; changes nothing."""
    return _import(engine, source, with_sample_data, actor, None, records, commit=False)


def run_import(
    engine: Engine,
    source: str | Path | dict,
    *,
    with_sample_data: bool = False,
    actor: Actor = SYSTEM,
    author: str | None = None,
    records: Records | None = None,
) -> ImportPlan:
    """Import ``source`` as an app of the same name, all or nothing.

    ``actor`` creates the sample records; ``author`` is recorded with the version.
    Raises PresetError (a broken preset, a refused sample record), ImportRefused
    (the merge does not validate) or PlanRefused, having changed nothing.
    """
    return _import(engine, source, with_sample_data, actor, author, records, commit=True)


def read_source(source: str | Path | dict) -> dict[str, Any]:
    """The preset document: a copy of the one given, or the preset named, or the file."""
    if isinstance(source, dict):
        return copy.deepcopy(source)
    return load_preset(source)


def _import(engine, source, with_sample_data, actor, author, records, *, commit) -> ImportPlan:
    preset = read_source(source)
    store.ensure_system_tables(engine)
    with engine.connect() as conn:
        # The import reads the app before it writes: take the write lock up front (SQLite).
        conn.execution_options(**{IMMEDIATE: True})
        transaction = conn.begin()
        try:
            plan = _Import(conn, engine, preset, actor, author, records).run(with_sample_data)
            if commit:
                transaction.commit()
                plan.applied = True
            else:
                transaction.rollback()
                plan.outcome.seq = None  # no version was recorded
        except BaseException:
            transaction.rollback()
            raise
    return plan


class _Import:
    def __init__(self, conn, engine, preset, actor, author, records):
        self.conn = conn
        self.engine = engine
        self.preset = preset
        self.actor = actor
        self.author = author
        self.records = records or Records(engine)

    def run(self, with_sample_data: bool) -> ImportPlan:
        conn, preset = self.conn, self.preset
        store.take_publish_lock(conn)
        problems = validate_document(preset, external=installed_apps(conn))
        if problems:
            label = preset.get("name") if isinstance(preset.get("name"), str) else "the preset"
            count = len(problems)
            raise PresetError(
                f"{label}: the preset has {count} error{'s' if count != 1 else ''}",
                problems=problems,
            )
        shipped = provenance.without_sample_data(preset)
        name = shipped["name"]
        current = store.current(conn, name)
        if current is None:
            plan = self.publish(shipped, None, None, None, f"preset {name} {shipped['version']}")
        else:
            plan = self.upgrade(current, shipped)
        if with_sample_data:
            self.add_sample_data(plan)
        if plan.changed:
            provenance.record_import(
                conn,
                preset=shipped,
                seq=plan.outcome.seq,
                sample_records=plan.sample_counts,
                author=self.author,
            )
        return plan

    def upgrade(self, current: store.StoredVersion, shipped: dict) -> ImportPlan:
        base, how = provenance.find_base(self.conn, current.app, shipped)
        merge = merge_documents(base, current.document, shipped)
        if merge.changed:
            version = merged_version(current.version, shipped["version"])
            document = {**merge.document, "version": version}
        else:
            document = current.document
        comment = f"preset {shipped['name']} {shipped['version']} merged into {current.version}"
        if merge.conflicts:
            comment += f", {len(merge.conflicts)} conflicts: the app's values kept"
        try:
            return self.publish(document, current.version, merge, how, comment)
        except InvalidDocument as error:
            raise ImportRefused(error.problems, merge) from None

    def publish(self, document, previous, merge, how, comment) -> ImportPlan:
        outcome = apply_document(
            self.engine,
            document,
            author=self.author,
            action=ACTION,
            comment=comment,
            conn=self.conn,
        )
        return ImportPlan(
            app=document["name"],
            preset_version=self.preset["version"],
            previous_version=previous,
            document=document,
            outcome=outcome,
            merge=merge,
            base=how,
        )

    def add_sample_data(self, plan: ImportPlan) -> None:
        sample = self.preset.get("sample_data")
        if not sample or not any(sample.values()):
            plan.sample_note = "the preset has no sample data"
            return
        when = provenance.sample_data_imported(self.conn, plan.app)
        if when is not None:
            plan.sample_note = f"sample data was imported on {when:%Y-%m-%d}: none is added again"
            return
        # The sample records are checked against the app as published, users' changes included.
        doc = {**plan.document, "sample_data": sample}
        joined = _Joined(self.conn, self.records)
        plan.sample_counts = import_sample_data(joined, self.actor, doc)


class _Joined(Records):
    """The record service inside the import's transaction: each call a savepoint of it.

    Every record operation gets its connection from ``writing``/``reading``, so
    handing out the import's connection puts the sample records in its
    transaction. A registry of its own keeps the not yet committed app out of
    the process-wide registry.
    """

    def __init__(self, conn: Connection, like: Records):
        super().__init__(
            like.engine, Registry(like.engine), clock=like.clock, files_root=like.files_root
        )
        self.guards = list(like.guards)
        self.conn = conn

    @contextmanager
    def writing(self, *, fresh: bool = False) -> Iterator[Connection]:
        with self.conn.begin_nested():
            if not fresh:
                self.registry.refresh(self.conn)
            yield self.conn

    @contextmanager
    def reading(self, *, fresh: bool = False) -> Iterator[Connection]:
        if not fresh:
            self.registry.refresh(self.conn)
        yield self.conn


__all__ = ["ImportPlan", "ImportRefused", "plan_import", "read_source", "run_import"]
