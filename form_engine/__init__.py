"""Forms built from form metadata, usable without Flask.

A page holds one :class:`FormCache` and, per request::

    spec = cache.spec(published_app, "deal")             # the default form (or a named one)
    page_layout = layout(spec, "zh")                     # tabs → sections → items
    form = bind(spec, current=record, language="zh")     # a WTForms form showing a record
    rules = manifest_json(spec, record, context=ctx)     # for form_rules.js

    result = submit(spec, request_form, record, context=ctx, store_file=...)
    if result.ok:
        records.update(actor, app, "deal", record["id"], result.values)
    # on CrmError from the service: form_errors(error, spec) → errors beside fields

See ``submission`` for what a request may and may not change.
"""

from .build import EngineForm, FormCache, field_for, form_class
from .definition import FormItem, FormSpec
from .errors import FORM, attach_errors, errors_from_problems, form_errors
from .layout import Item, Layout, Section, Tab, layout
from .manifest import manifest, manifest_json
from .rules import ItemState, evaluate_form
from .submission import Submission, bind, submit, validate_field

__all__ = [
    "FORM",
    "EngineForm",
    "FormCache",
    "FormItem",
    "FormSpec",
    "Item",
    "ItemState",
    "Layout",
    "Section",
    "Submission",
    "Tab",
    "attach_errors",
    "bind",
    "errors_from_problems",
    "evaluate_form",
    "field_for",
    "form_class",
    "form_errors",
    "layout",
    "manifest",
    "manifest_json",
    "submit",
    "validate_field",
]
