"""The HTTP API at ``/api/v1``: JSON in and out, bearer tokens, errors with JSON Pointers.

One blueprint per area (apps, records, the OpenAPI description) under a parent
that authenticates every request, brings the metadata up to date with any
publish made elsewhere, and turns every refusal into a JSON error.
"""

from __future__ import annotations

from flask import Blueprint

from ..runtime import runtime
from . import apps, dashboards, errors, imports, openapi, records, service, workflows
from .auth import current_actor
from .paths import PREFIX

blueprint = Blueprint("api", __name__, url_prefix=PREFIX)
blueprint.record_once(lambda state: service.bind(state.app))
errors.install(blueprint)


@blueprint.before_request
def _authenticate_and_refresh():
    current_actor()
    crm = runtime()
    with crm.engine.connect() as conn:
        crm.registry.refresh(conn)


blueprint.register_blueprint(apps.blueprint)
blueprint.register_blueprint(records.blueprint)
blueprint.register_blueprint(openapi.blueprint)
blueprint.register_blueprint(dashboards.blueprint)
blueprint.register_blueprint(workflows.blueprint)
blueprint.register_blueprint(imports.blueprint)

__all__ = ["PREFIX", "blueprint", "current_actor"]
