"""A record form on a page: the form engine's spec, form, rules and pickers for one request.

The form engine (``form_engine/``) decides what a form holds and what a request
may change. This module supplies what only a request knows: who fills the form
in and which fields they may read or change, their language and time zone, the
referenced records they may see, where uploads go; and it shapes the result for
the templates under ``records/`` (``records/_form.html`` draws it).

A public form is filled in by nobody in particular: it follows no reference
(rules reading ``campaign.name`` see null, so no record's data reaches the
page), shows no picker and no list of users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request
from flask_babel import get_timezone
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms.widgets import html_params

from form_engine import (
    EngineForm,
    FormCache,
    FormSpec,
    Layout,
    Submission,
    attach_errors,
    bind,
    field_for,
    form_errors,
    layout,
    manifest,
    submit,
)
from form_engine.rules import Resolver, defaults
from form_engine.values import kind
from metamodel.errors import CrmError
from metamodel.field_types import ValueProblem
from metamodel.model import EntityModel
from metamodel.system_tables import users
from metamodel.text import localise
from records import access
from records.actor import Actor
from records.serialize import json_value

from ..api.service import records_service
from ..i18n import language, translated
from . import pickers
from .pickers import Picked

FORM_CACHE = "crm.form_cache"
MAX_USERS = 500
REFERENCE_TYPES = ("reference", "multi_reference")
FILE_FIELD_TYPES = ("file", "signature")
# Inputs a rule makes read-only by disabling them (their value is put back and not sent).
DISABLED_WHEN_READ_ONLY = (
    "select",
    "multiselect",
    "boolean",
    "rating",
    "reference",
    "multi_reference",
    "user",
    "file",
    "signature",
)


def message(text: str) -> str:
    """A message beside a field, in the user's language (see i18n.translated)."""
    return translated(text)


def form_cache() -> FormCache:
    """The process's form cache (specs and WTForms classes per metadata version)."""
    extensions = current_app.extensions
    if FORM_CACHE not in extensions:
        extensions.setdefault(FORM_CACHE, FormCache())
    return extensions[FORM_CACHE]


def spec_of(app: str, entity: str, form: str | None = None) -> FormSpec:
    published = records_service().registry.app(app)
    return form_cache().spec(published, entity, form)


def timezone_name() -> str:
    return str(get_timezone())


# --- who fills the form in ------------------------------------------------------------


@dataclass(frozen=True)
class Filler:
    """Who fills a form in, and what that allows."""

    actor: Actor
    context: dict
    # Fields shown read-only (no write role); hidden ones (no read role) are locked too.
    locked: frozenset[str]
    hidden: frozenset[str]
    public: bool = False

    def resolver(self) -> Resolver | None:
        """Referenced records as this user may read them; none at all on a public form."""
        if self.public:
            return None
        service, actor = records_service(), self.actor

        def resolve(entity: EntityModel, record_id: int) -> dict | None:
            try:
                return service.get(actor, entity.app.name, entity.name, record_id)
            except CrmError:
                return None

        return resolve


def filler_for(spec: FormSpec, actor: Actor, *, public: bool = False) -> Filler:
    fields = [item.field for item in spec.items.values()]
    hidden = frozenset(f.name for f in fields if not access.readable(actor, f))
    locked = hidden | {f.name for f in fields if not access.writable(actor, f)}
    return Filler(actor, records_service().context(actor), frozenset(locked), hidden, public)


def prefilled(spec: FormSpec, args: MultiDict, filler: Filler) -> dict[str, Any]:
    """A new record's values from the URL (``?account=5``): inputs placed on the form only.

    A value that does not fit its field is left out; so is a reference to a record
    the user may not read (a public form checks nothing: it shows no record).
    """
    values: dict[str, Any] = {}
    for name in spec.inputs:
        if name in filler.locked or name in spec.children or name not in args:
            continue
        fld = spec.items[name].field
        if kind(fld) == "stored":
            continue
        given = [v for v in args.getlist(name) if v.strip()]
        if not given:
            continue
        many = fld.type_name in ("multiselect", "multi_reference")
        try:
            values[name] = json_value(fld.coerce(given if many else given[0]))
        except (ValueProblem, CrmError, TypeError, ValueError):
            continue
    if not filler.public:
        for name in [n for n in values if spec.items[n].field.type_name in REFERENCE_TYPES]:
            fld = spec.items[name].field
            ids = values[name] if isinstance(values[name], list) else [values[name]]
            readable = pickers.found(records_service(), filler.actor, fld.target, ids)
            kept = [i for i in ids if i in readable]
            if not kept:
                del values[name]
            else:
                values[name] = kept if isinstance(values[name], list) else kept[0]
    return values


def new_record(spec: FormSpec, filler: Filler, args: MultiDict) -> dict[str, Any]:
    """What a new record's form starts from: the fields' defaults, then the URL's values."""
    start = {k: json_value(v) for k, v in defaults(spec.entity, filler.context).items()}
    start.update(prefilled(spec, args, filler))
    return start


def validation_messages(spec: FormSpec) -> set[str]:
    """Messages of the form's validations: form_rules.js shows these as the user types."""
    lang = language()
    return {localise(v["message"], lang) for v in spec.validations}


# --- the page's view of a form ---------------------------------------------------------


@dataclass
class FormView:
    spec: FormSpec
    layout: Layout
    form: EngineForm
    rules: dict[str, Any]
    states: dict[str, dict[str, bool]]
    filler: Filler
    # Records the pickers show, by target ("app.entity") and id.
    picked: dict[str, dict[int, Picked]] = field(default_factory=dict)
    users: list[tuple[int, str]] = field(default_factory=list)
    # Where the inputs ask for their messages as the user leaves them (None: they don't).
    validate_url: str | None = None

    @property
    def validation_messages(self) -> set[str]:
        return validation_messages(self.spec)

    def state(self, name: str) -> dict[str, bool]:
        return self.states.get(name) or {"visible": True, "required": False, "read_only": False}

    def field(self, name: str):
        return field_for(self.form, name)

    @staticmethod
    def field_in(row_form: EngineForm, name: str):
        """A cell of one child row's form."""
        return field_for(row_form, name)

    def picks(self, target: dict | None, value: Any) -> list[Picked]:
        """The picked records behind a reference input's value (ids the user may not
        read show as their id)."""
        if not target or value in (None, "", []):
            return []
        known = self.picked.get(f"{target['app']}.{target['entity']}", {})
        ids = value if isinstance(value, list) else [value]
        return [known.get(i) or Picked(i, f"#{i}", "") for i in ids if isinstance(i, int)]

    @property
    def tabbed(self) -> bool:
        return len(self.layout.tabs) > 1

    def section_visible(self, section) -> bool:
        """Does any field of a layout section show now (form_rules.js keeps this current)?"""
        return any(
            self.state(item.field)["visible"]
            for item in section.items
            if item.field not in self.filler.hidden
        )

    def item_of(self, name: str, table: str | None = None):
        """The form engine's item of a field (of a child table's row with ``table``)."""
        spec = self.spec.children[table] if table else self.spec
        return spec.items[name]

    def cell_state(self, table: str, name: str) -> dict[str, bool]:
        """Rules are not evaluated per row: a cell is required or read-only as declared."""
        item = self.item_of(name, table)
        return {
            "visible": True,
            "required": item.static_required,
            "read_only": item.display_only or table in self.filler.locked,
        }

    def attrs(
        self, item_type: str, html_name: str, state: dict, label: str | None = None
    ) -> dict[str, Any]:
        """The attributes of a field's input: inline validation, date pickers, and the
        state the rules give it now (form_rules.js keeps that state current)."""
        attrs: dict[str, Any] = {"aria-describedby": f"{html_name}-errors"}
        if label is not None:
            attrs["aria-label"] = label
        if self.validate_url:
            attrs.update({"hx-post": self.validate_url, "hx-trigger": "change", "hx-swap": "none"})
        if item_type in ("date", "datetime"):
            attrs.update(
                {
                    "type": "text",
                    "data-datepicker": item_type,
                    "autocomplete": "off",
                    "placeholder": "YYYY-MM-DD" + (" HH:MM" if item_type == "datetime" else ""),
                }
            )
        if not state["visible"] or (state["read_only"] and item_type in DISABLED_WHEN_READ_ONLY):
            # Marked as the rules' doing, so form_rules.js enables them again when they apply.
            attrs.update({"disabled": True, "data-rules-disabled": ""})
        elif state["read_only"]:
            attrs["readonly"] = True
        return attrs

    @staticmethod
    def html(attrs: dict[str, Any]) -> Markup:
        """Attributes for an input the template writes itself (values escaped)."""
        return Markup(html_params(**attrs))

    @staticmethod
    def with_record(attrs: dict[str, Any], picks: list[Picked]) -> dict[str, Any]:
        """A reference input's attributes with the picked record's fields, for the rules."""
        if picks and picks[0].record:
            return {**attrs, "data-record": picks[0].record}
        return attrs


def form_view(
    spec: FormSpec,
    filler: Filler,
    form: EngineForm,
    current: dict | None,
    states: dict | None = None,
) -> FormView:
    """Everything ``records/_form.html`` needs; ``states`` from a submission, if any."""
    lang = language()
    rules = manifest(
        spec,
        current,
        language=lang,
        timezone=timezone_name(),
        context=filler.context,
        resolve=filler.resolver(),
        locked=filler.locked,
    )
    shown = {n: s.as_dict() for n, s in states.items()} if states else rules["states"]
    view = FormView(spec, layout(spec, lang, locked=filler.locked), form, rules, shown, filler)
    if not filler.public:
        view.picked = _picked(spec, form, filler.actor)
        view.users = _user_choices(spec)
    return view


def _picked(spec: FormSpec, form: EngineForm, actor: Actor) -> dict[str, dict[int, Picked]]:
    """The records the form's reference inputs (child rows' too) name: one query per target."""
    wanted: dict[str, tuple[EntityModel, set[int]]] = {}

    def note(fld, value) -> None:
        if fld.type_name not in REFERENCE_TYPES or fld.target is None:
            return
        key = f"{fld.target.app.name}.{fld.target.name}"
        ids = value if isinstance(value, list) else [value]
        wanted.setdefault(key, (fld.target, set()))[1].update(
            i for i in ids if isinstance(i, int) and not isinstance(i, bool)
        )

    for name, item in spec.items.items():
        bound = field_for(form, name)
        if name in spec.children:
            child = spec.children[name]
            for entry in bound.entries:
                for child_name, child_item in child.items.items():
                    note(child_item.field, field_for(entry.form, child_name).data)
        else:
            note(item.field, bound.data)
    service = records_service()
    return {
        key: pickers.found(service, actor, target, ids) for key, (target, ids) in wanted.items()
    }


def _user_choices(spec: FormSpec) -> list[tuple[int, str]]:
    """Active users to pick from, when the form (or a child row) has a user field."""
    specs = [spec, *spec.children.values()]
    if not any(i.field.type_name == "user" for s in specs for i in s.items.values()):
        return []
    query = (
        select(users.c.id, users.c.display_name, users.c.username)
        .where(users.c.active.is_(True))
        .order_by(users.c.username)
        .limit(MAX_USERS)
    )
    with records_service().engine.connect() as conn:
        return [(row.id, row.display_name or row.username) for row in conn.execute(query)]


# --- reading a submitted form ------------------------------------------------------------


def user_lookup(username: str) -> int | None:
    query = select(users.c.id).where(users.c.username == username, users.c.active.is_(True))
    with records_service().engine.connect() as conn:
        return conn.execute(query).scalar()


def request_data() -> CombinedMultiDict:
    return CombinedMultiDict([request.files, request.form])


def submit_form(
    spec: FormSpec,
    filler: Filler,
    current: dict | None,
    *,
    uploads: bool = True,
    formdata: Any = None,
) -> Submission:
    """The request's form read against its rules; uploads are stored once it is valid.

    A refused upload (type, size) comes back as errors beside its field, like any other.
    """
    formdata = request_data() if formdata is None else formdata
    service, actor = records_service(), filler.actor
    app, entity = spec.app.name, spec.entity.name

    def store_file(name: str, upload) -> dict:
        mime = getattr(upload, "mimetype", None) or "application/octet-stream"
        return service.upload(actor, app, entity, name, upload.stream, upload.filename, mime)

    lang, zone = language(), timezone_name()
    try:
        return submit(
            spec,
            formdata,
            current,
            language=lang,
            timezone=zone,
            context=filler.context,
            resolve=filler.resolver(),
            locked=filler.locked,
            store_file=store_file if uploads else None,
            users=None if filler.public else user_lookup,
        )
    except CrmError as error:
        form = bind(spec, formdata, current, language=lang, timezone=zone)
        errors = form_errors(error, spec, lang)
        attach_errors(form, errors)
        return Submission(form, {}, errors, {})


def refused(submission: Submission, error: CrmError) -> None:
    """Put what the record service refused beside the fields it concerns."""
    errors = form_errors(error, submission.form.form_spec, language())
    submission.errors = errors
    attach_errors(submission.form, errors)
