"""The semantic checker: what the schema can't say about an app document.

Each check is a generator of problems over an ``AppScope``; they run in the
order below and never stop at the first problem. The document may have failed
the schema, so every check skips what does not have the shape it needs.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import Problem
from .computed import check_computed
from .entities import check_entities
from .fields import check_fields
from .forms import check_forms
from .names import check_names
from .references import check_references
from .rules import check_rules
from .sample_data import check_sample_data
from .scope import AppScope, ExternalApps, Installed
from .views import check_dashboards, check_views
from .workflows import check_workflows

CHECKS = (
    check_names,
    check_references,
    check_entities,
    check_fields,
    check_computed,
    check_forms,
    check_workflows,
    check_views,
    check_dashboards,
    check_rules,
    check_sample_data,
)


def semantic_problems(
    doc: dict, external: ExternalApps | None = None, unsound: Iterable[str] = ()
) -> list[Problem]:
    """Every semantic problem of ``doc``; ``unsound``: pointers the schema rejected."""
    app = AppScope(doc, Installed(external), unsound=unsound)
    return [problem for check in CHECKS for problem in check(app)]
