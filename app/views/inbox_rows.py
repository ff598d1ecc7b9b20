"""What an approvals inbox row shows besides the engine's item: the record's title and labels.

The engine's inbox items name a record by app, entity and id. A row shows its
title, the app and entity labels and the step's label, read for all rows of a
page in one transaction: one query per entity for the titles.

The titles are read straight from the entity's table, without the record
service's read rules: every item of a user's inbox is an approval they take
part in (their task, their request, a copy to them), and the engine lets them see
that approval, so they may know what it is about.
"""

from __future__ import annotations

from sqlalchemy import select

from metamodel.errors import CrmError
from metamodel.text import humanise, localise
from workflow_engine.definitions import workflows_of

from ..api.service import records_service


def describe(items: list[dict], language: str) -> list[dict]:
    """Each item with ``title``, ``has_title``, ``app_label``, ``entity_label``, ``step_label``."""
    service = records_service()
    groups: dict[tuple[str, str], set[int]] = {}
    for item in items:
        groups.setdefault((item["app"], item["entity"]), set()).add(item["record_id"])
    facts: dict[tuple[str, str], dict] = {}
    with service.reading() as conn:
        for (app, entity), ids in groups.items():
            facts[app, entity] = _facts(service, conn, app, entity, ids, language)
    described = []
    for item in items:
        fact = facts[item["app"], item["entity"]]
        title = fact["titles"].get(item["record_id"])
        step = item.get("step")
        described.append(
            item
            | {
                "title": title or f"{fact['entity_label']} #{item['record_id']}",
                "has_title": bool(title),
                "app_label": fact["app_label"],
                "entity_label": fact["entity_label"],
                "label_text": localise(item.get("label"), language),
                "step_label": fact["steps"].get((item["workflow"], item["transition"], step))
                or (humanise(step) if step else ""),
            }
        )
    return described


def _facts(service, conn, app: str, entity: str, ids: set[int], language: str) -> dict:
    try:
        runtime = service.runtime(app, entity, conn)
    except CrmError:
        # The app or entity is gone since the approval started: name it as stored.
        return {"titles": {}, "app_label": app, "entity_label": entity, "steps": {}}
    model = runtime.entity
    titles: dict[int, str] = {}
    column = runtime.table.c.get(model.title_field) if model.title_field else None
    if column is not None:
        table = runtime.table
        rows = conn.execute(select(table.c.id, column).where(table.c.id.in_(sorted(ids))))
        titles = {row[0]: str(row[1]) for row in rows if row[1] not in (None, "")}
    steps = {
        (workflow.name, transition.name, step.name): localise(step.label, language)
        for workflow in workflows_of(model)
        for transition in workflow.transitions.values()
        for step in transition.steps
    }
    return {
        "titles": titles,
        "app_label": localise(model.app.label, language) or app,
        "entity_label": localise(model.label, language) or entity,
        "steps": steps,
    }
