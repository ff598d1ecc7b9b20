"""WTForms classes for forms, built on first use and cached per metadata version.

Nothing is generated at import time or at registration: a :class:`FormCache`
builds a form's :class:`~form_engine.definition.FormSpec` the first time someone
asks for it and keeps it while the app's document stays the same (its digest
is the version). Each spec keeps one WTForms class per language, since labels
and option names are in the user's language. A publish changes the digest, and
the next request builds afresh.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from wtforms import Form
from wtforms.fields import Field

from metamodel.model import AppModel
from metamodel.registry import PublishedApp
from metamodel.text import localise
from metamodel.versions import digest

from .definition import FormSpec, build_spec
from .fields import FieldOptions, IdField, attribute_name, unbound_field
from .rules import defaults


class EngineForm(Form):
    """The base of every generated form class (its attributes: fields.FORM_ATTRIBUTES)."""

    form_spec: FormSpec | None = None
    language = "en"

    class Meta:
        # A zone name (Asia/Shanghai) for datetime inputs; None asks the parent
        # form (for rows) and then means UTC. Give it per request: Form(meta=...).
        timezone = None


def field_for(form: Form, name: str) -> Field:
    """The bound field of ``form`` for the metadata field ``name``."""
    return form._fields[attribute_name(name)]


def build_form_class(spec: FormSpec, language: str = "en", *, row: bool = False) -> type:
    attrs: dict[str, Any] = {"form_spec": spec, "language": language}
    if row:
        attrs["id"] = IdField()
    for name, item in spec.items.items():
        fld = item.field
        row_form, row_defaults = None, {}
        if name in spec.children:
            row_form = form_class(spec.children[name], language, row=True)
            # Literal defaults only: $user and $now need a request, and the service fills them.
            row_defaults = defaults(spec.children[name].entity, None)
        options = FieldOptions(
            label=localise(item.label or fld.label, language),
            description=localise(item.help or fld.doc.get("help"), language),
            language=language,
            required=item.static_required,
            display_only=item.display_only,
            row_form=row_form,
            row_defaults=row_defaults,
            name=name if attribute_name(name) != name else None,
        )
        attrs[attribute_name(name)] = unbound_field(fld, options)
    kind = "Row" if row else "Form"
    class_name = f"{spec.app.name}_{spec.entity.name}_{spec.name or 'default'}_{kind}"
    return type(class_name, (EngineForm,), attrs)


def form_class(spec: FormSpec, language: str = "en", *, row: bool = False) -> type:
    """The WTForms class of ``spec`` in ``language``, built once per spec."""
    key = f"{language}:row" if row else language
    built = spec.classes.get(key)
    if built is None:
        built = spec.classes[key] = build_form_class(spec, language, row=row)
    return built


class FormCache:
    """Form specs (and through them their classes) per (app, entity, form) and version.

    One cache per process, e.g. next to the metadata registry. Old versions are
    dropped as soon as a newer one is asked for.
    """

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str, str | None], FormSpec] = {}
        self._digests: weakref.WeakKeyDictionary[AppModel, str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def version(self, app: AppModel | PublishedApp) -> str:
        """The metadata version of ``app``: the digest of its document."""
        if isinstance(app, PublishedApp):
            return app.stored.digest
        known = self._digests.get(app)
        if known is None:
            known = digest(app.doc)
            with self._lock:
                self._digests[app] = known
        return known

    def spec(self, app: AppModel | PublishedApp, entity: str, form: str | None = None) -> FormSpec:
        """The spec of ``form`` (None: the entity's default form) at ``app``'s version."""
        version = self.version(app)
        model = app.model if isinstance(app, PublishedApp) else app
        key = (model.name, entity, form)
        spec = self._specs.get(key)
        if spec is None or spec.version != version:
            spec = build_spec(model, entity, form, version)
            with self._lock:
                self._specs[key] = spec
        return spec

    def form_class(
        self,
        app: AppModel | PublishedApp,
        entity: str,
        form: str | None = None,
        *,
        language: str = "en",
    ) -> type:
        return form_class(self.spec(app, entity, form), language)
