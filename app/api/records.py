"""``/api/v1/records/{app}/{entity}``: list, create, batch, read, update, delete, restore.

Every rule (permissions, validation, computed fields, audit) is the record
service's; these views only read the request and shape the response.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from metamodel.errors import NotFound, Problem
from records.errors import ValidationFailed
from records.query import ListQuery
from records.runtime import EntityRuntime

from .auth import current_actor
from .inputs import MAX_ID, etag, if_match, json_body, query_int, query_json
from .service import records_service

blueprint = Blueprint("records", __name__, url_prefix="/records")

RECORD = f"/<app>/<entity>/<int(min=1, max={MAX_ID}):record_id>"
MAX_BATCH = 1000
# Far past any real page, and small enough that the row offset fits a BIGINT.
MAX_PAGE = 1_000_000_000


def entity_runtime(app: str, entity: str) -> EntityRuntime:
    """The runtime of an entity with records of its own (child rows live in their parent)."""
    runtime = records_service().runtime(app, entity)
    if runtime.entity.is_child:
        parent = runtime.entity.parent
        where = f"as '{parent[1].name}' of {parent[0].name} records" if parent else "nowhere"
        raise NotFound(f"'{entity}' is a child table: its rows are read and written {where}")
    return runtime


def _with_record(record: dict, status: int = 200, **headers):
    response = jsonify(record)
    response.status_code = status
    response.headers["ETag"] = etag(record["version"])
    response.headers.update(headers)
    return response


@blueprint.get("/<app>/<entity>")
def list_records(app: str, entity: str):
    entity_runtime(app, entity)
    page = query_int("page", 1)
    if page > MAX_PAGE:
        raise ValidationFailed([Problem("/page", f"must be a whole number from 1 to {MAX_PAGE}")])
    query = ListQuery(
        filter=query_json("filter"),
        q=request.args.get("q"),
        sort=request.args.get("sort"),
        page=page,
        per_page=query_int("per_page", ListQuery.per_page),
    )
    return jsonify(records_service().list(current_actor(), app, entity, query))


@blueprint.post("/<app>/<entity>")
def create_record(app: str, entity: str):
    entity_runtime(app, entity)
    record = records_service().create(current_actor(), app, entity, json_body())
    location = url_for(".get_record", app=app, entity=entity, record_id=record["id"])
    return _with_record(record, 201, Location=location)


@blueprint.post("/<app>/<entity>/batch")
def create_batch(app: str, entity: str):
    entity_runtime(app, entity)
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed([Problem("", 'must be an object: {"items": [...]}')])
    problems = [Problem(f"/{key}", "is not a key of a batch") for key in body if key != "items"]
    items = body.get("items")
    if "items" not in body:
        problems.append(Problem("/items", "is required: the list of records to create"))
    elif not isinstance(items, list):
        problems.append(Problem("/items", "must be a list of records"))
    elif len(items) > MAX_BATCH:
        problems.append(
            Problem("/items", f"holds {len(items)} records; at most {MAX_BATCH} are accepted")
        )
    if problems:
        raise ValidationFailed(problems)
    ids = records_service().create_many(current_actor(), app, entity, items)
    response = jsonify({"ids": ids})
    response.status_code = 201
    return response


@blueprint.get(RECORD)
def get_record(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    return _with_record(records_service().get(current_actor(), app, entity, record_id))


@blueprint.patch(RECORD)
def update_record(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    expected = if_match()
    record = records_service().update(
        current_actor(), app, entity, record_id, json_body(), expected_version=expected
    )
    return _with_record(record)


@blueprint.delete(RECORD)
def delete_record(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    records_service().delete(current_actor(), app, entity, record_id)
    return "", 204


@blueprint.post(RECORD + "/restore")
def restore_record(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    return _with_record(records_service().restore(current_actor(), app, entity, record_id))


@blueprint.get(RECORD + "/history")
def record_history(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    return jsonify({"items": records_service().history(current_actor(), app, entity, record_id)})
