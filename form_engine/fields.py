"""One WTForms field per field type, through one registry.

Every field parses its input with the field-type registry's own coercion
(``FieldModel.coerce``), so a form rejects exactly what the record service
would reject, with the same message, and what it accepts is the typed value the
service stores (``Decimal``, never float). Computed and engine-owned fields
become display fields that ignore whatever a request sends for them.

Adding a field type is adding one ``@converts`` entry; asking for a type
without one raises.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from wtforms import Form
from wtforms.fields import BooleanField, Field, FieldList, FormField, SelectField
from wtforms.fields import SelectMultipleField as _SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.fields.core import UnboundField
from wtforms.utils import unset_value
from wtforms.widgets import (
    DateInput,
    DateTimeLocalInput,
    EmailInput,
    FileInput,
    HiddenInput,
    NumberInput,
    TelInput,
    TextArea,
    TextInput,
    URLInput,
)

from metamodel import field_types
from metamodel.errors import CrmError
from metamodel.field_types import ValueProblem
from metamodel.messages import Message
from metamodel.model import FieldModel
from metamodel.text import localise

from .values import ID, blank, input_text, parse_local_datetime, typed, zone
from .widgets import LocationInput, MultiHiddenInput, OutputWidget

SIGNATURE_PREFIX = "data:image/png;base64,"
NUMERIC = re.compile(r"^[+-]?[\d.]+$")


@dataclass(frozen=True)
class FieldOptions:
    """What a field needs besides its metadata: words in the user's language, and place."""

    label: str
    description: str = ""
    language: str = "en"
    required: bool = False
    display_only: bool = False
    # The form class of one row, for child tables.
    row_form: type[Form] | None = None
    # The values a new row starts with, for child tables.
    row_defaults: dict[str, Any] = field(default_factory=dict)
    # The HTML name, when the attribute name must differ (see attribute_name).
    name: str | None = None

    def kwargs(self, **render_kw) -> dict[str, Any]:
        if self.required:
            render_kw["required"] = True
        kwargs: dict[str, Any] = {"description": self.description}
        if render_kw:
            kwargs["render_kw"] = render_kw
        if self.name is not None:
            kwargs["name"] = self.name
        return kwargs


# A field whose name is also an attribute of the form (``data``, ``errors``, ``meta``)
# gets the attribute ``data_``; its HTML name stays ``data``. The generated forms
# add form_spec and language (see build.EngineForm).
FORM_ATTRIBUTES = frozenset(dir(Form)) | {"form_spec", "language"}


def attribute_name(name: str) -> str:
    return f"{name}_" if name in FORM_ATTRIBUTES else name


Builder = Callable[[FieldModel, FieldOptions], UnboundField]
FIELD_TYPES: dict[str, Builder] = {}


def converts(*type_names: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        for name in type_names:
            FIELD_TYPES[name] = builder
        return builder

    return register


def unbound_field(fld: FieldModel, options: FieldOptions) -> UnboundField:
    """The WTForms field for ``fld``; CrmError for a type without an entry."""
    builder = FIELD_TYPES.get(fld.type_name)
    if builder is None:
        raise CrmError(f"the form engine has no field for type '{fld.type_name}'")
    if options.display_only:
        # Engine-owned and read_only fields of any type show like computed ones.
        builder = display_field
    return builder(fld, options)


def timezone_of(fld: Field):
    """The form's time zone; a row form asks the form it belongs to."""
    meta = fld.meta
    while getattr(meta, "timezone", None) is None and getattr(meta, "_parent_form", None):
        meta = meta._parent_form.meta
    return zone(getattr(meta, "timezone", None))


def _problem(call: Callable[[], Any]) -> Any:
    """Run a coercion; its ValueProblem becomes the ValueError WTForms collects."""
    try:
        return call()
    except ValueProblem as problem:
        raise ValueError(problem.message) from None


# --- fields ------------------------------------------------------------------------


class TypedField(Field):
    """Text in one input, coerced through the field-type registry."""

    def __init__(self, label=None, validators=None, *, model: FieldModel, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.model = model

    def process_data(self, value):
        self.data = typed(self.model, value)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        text = valuelist[0] if isinstance(valuelist[0], str) else ""
        self.data = None
        if not blank(text):
            self.data = self.parse(text)

    def parse(self, text: str) -> Any:
        return _problem(lambda: self.model.coerce(text))

    def _value(self) -> str:
        if self.process_errors and self.raw_data:
            return self.raw_data[0] if isinstance(self.raw_data[0], str) else ""
        return input_text(self.model, self.data, timezone_of(self))


class LocalDateTimeField(TypedField):
    """A ``datetime-local`` input: wall time in the form's time zone, stored as UTC."""

    def parse(self, text: str) -> Any:
        local = parse_local_datetime(text, timezone_of(self))
        return _problem(lambda: self.model.coerce(local if local is not None else text))


class UserField(TypedField):
    """A user's id; a username is kept as text for the submission to resolve."""

    def parse(self, text: str) -> Any:
        text = text.strip()
        if NUMERIC.match(text):
            return _problem(lambda: self.model.coerce(text))
        return text


class ReferenceField(TypedField):
    """The id of the referenced record; the page renders a type-ahead picker for it."""

    def __init__(self, label=None, validators=None, *, target: dict, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.target = target


class RatingField(TypedField):
    def __init__(self, label=None, validators=None, *, stars: int, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.stars = stars


class CheckField(BooleanField):
    """A checkbox: ticked is true; unticked sends nothing, which is false."""

    def __init__(self, label=None, validators=None, *, model: FieldModel, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.model = model

    def process_data(self, value):
        self.data = bool(typed(self.model, value))

    def process_formdata(self, valuelist):
        self.data = False
        if valuelist:
            self.data = _problem(lambda: field_types.coerce_boolean(valuelist[0], {}))

    def _value(self) -> str:
        return "true"


class OptionField(SelectField):
    """One option; ``options`` keeps each option's colour for the template."""

    def __init__(self, label=None, validators=None, *, model: FieldModel, options, **kwargs):
        choices = [SelectChoice("", "—")] + [
            SelectChoice(
                o["value"], o["label"], render_kw={"data-color": o["color"]} if o["color"] else {}
            )
            for o in options
        ]
        super().__init__(label, validators, choices=choices, validate_choice=False, **kwargs)
        self.model = model
        self.options = options

    def process_data(self, value):
        self.data = typed(self.model, value)

    def process_formdata(self, valuelist):
        self.data = None
        if valuelist and not blank(valuelist[0]):
            self.data = _problem(lambda: self.model.coerce(valuelist[0]))


class MultiOptionField(_SelectMultipleField):
    def __init__(self, label=None, validators=None, *, model: FieldModel, options, **kwargs):
        choices = [
            SelectChoice(
                o["value"], o["label"], render_kw={"data-color": o["color"]} if o["color"] else {}
            )
            for o in options
        ]
        super().__init__(label, validators, choices=choices, validate_choice=False, **kwargs)
        self.model = model
        self.options = options

    def process_data(self, value):
        self.data = typed(self.model, value) or []

    def process_formdata(self, valuelist):
        given = [v for v in valuelist if not blank(v)]
        self.data = []
        self.data = _problem(lambda: self.model.coerce(given))


class ReferencesField(Field):
    """Ids of several records (multi_reference), one hidden input each."""

    widget = MultiHiddenInput()

    def __init__(self, label=None, validators=None, *, model: FieldModel, target, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.model = model
        self.target = target

    def process_data(self, value):
        if isinstance(value, list):
            value = [v.get("id") if isinstance(v, dict) else v for v in value]
        self.data = typed(self.model, value) or []

    def process_formdata(self, valuelist):
        given = [v.strip() for v in valuelist if isinstance(v, str) and not blank(v)]
        self.data = []
        self.data = _problem(lambda: self.model.coerce(given))


@dataclass(frozen=True)
class Upload:
    """A file a form received; ``store_file`` turns it into a stored file's descriptor."""

    filename: str
    mimetype: str
    stream: Any


def _is_upload(value: Any) -> bool:
    return bool(getattr(value, "filename", None)) and hasattr(value, "stream")


class FilesField(Field):
    """Files: the ids of the files kept (hidden inputs) and new uploads (the file input)."""

    def __init__(self, label=None, validators=None, *, model: FieldModel, **kwargs):
        multiple = bool(model.doc.get("multiple"))
        super().__init__(label, validators, widget=FileInput(multiple=multiple), **kwargs)
        self.model = model
        self.files: list[dict] = []
        self.uploads: list[Any] = []

    def process_data(self, value):
        self.files = [v for v in value or [] if isinstance(v, dict)]
        self.data = [v["id"] if isinstance(v, dict) else v for v in value or []]

    def process_formdata(self, valuelist):
        self.uploads = [v for v in valuelist if _is_upload(v)]
        kept = [v.strip() for v in valuelist if isinstance(v, str) and not blank(v)]
        self.data = []
        if any(not ID.match(v) for v in kept):
            raise ValueError(Message("name kept files by their ids"))
        self.data = [int(v) for v in kept]
        self.files = [f for f in self.files if f.get("id") in self.data]


class SignatureField(Field):
    """A signature drawn on the form: a PNG data URL, or the id of the one kept."""

    widget = HiddenInput()

    def __init__(self, label=None, validators=None, *, model: FieldModel, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.model = model
        self.files: list[dict] = []
        self.uploads: list[Upload] = []

    def process_data(self, value):
        self.files = [v for v in value or [] if isinstance(v, dict)]
        self.data = [v["id"] if isinstance(v, dict) else v for v in value or []]

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        text = valuelist[0].strip() if isinstance(valuelist[0], str) else ""
        self.data, self.uploads = [], []
        if not text:
            return
        if ID.match(text):
            self.data = [int(text)]
            return
        if not text.startswith(SIGNATURE_PREFIX):
            raise ValueError(Message("is not a drawn signature (a PNG data URL)"))
        try:
            png = base64.b64decode(text[len(SIGNATURE_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(Message("is not a drawn signature (its data is not base64)")) from None
        self.uploads = [Upload("signature.png", "image/png", io.BytesIO(png))]

    def _value(self) -> str:
        return str(self.data[0]) if self.data else ""


class LocationField(Field):
    """Latitude, longitude and address, sent as ``name-lat``, ``name-lng``, ``name-address``."""

    widget = LocationInput()
    PARTS = ("lat", "lng", "address")

    def __init__(self, label=None, validators=None, *, model: FieldModel, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.model = model

    def process(self, formdata, data=unset_value, extra_filters=None):
        super().process(formdata, data, extra_filters)
        if formdata is None:
            return
        given = {part: formdata.getlist(f"{self.name}-{part}") for part in self.PARTS}
        if not any(given.values()):
            return
        self.raw_data = [values[0] if values else "" for values in given.values()]
        lat, lng, address = self.raw_data
        self.data = None
        if blank(lat) and blank(lng):
            return
        value = {"lat": lat, "lng": lng, "address": address.strip() or None}
        try:
            self.data = self.model.coerce(value)
        except ValueProblem as problem:
            self.process_errors.append(problem.message)

    def process_data(self, value):
        self.data = value if isinstance(value, dict) else None

    def process_formdata(self, valuelist):
        """The parts arrive under their own names; see process."""

    def parts(self) -> tuple[str, str, str]:
        if self.process_errors and len(self.raw_data) == 3:
            return tuple(self.raw_data)
        value = self.data or {}
        return tuple("" if value.get(part) is None else str(value[part]) for part in self.PARTS)


class DisplayField(Field):
    """A value the engine computes or owns: shown, and never taken from a request."""

    widget = OutputWidget()

    def __init__(self, label=None, validators=None, *, model: FieldModel, language, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.model = model
        self.language = language

    def process_data(self, value):
        self.data = typed(self.model, value)

    def process_formdata(self, valuelist):
        """Whatever was sent for this field is ignored."""

    def _value(self) -> str:
        value = self.data
        if isinstance(value, list):
            return ", ".join(
                str(v.get("name", v.get("id"))) if isinstance(v, dict) else str(v) for v in value
            )
        labels = {o["value"]: o["label"] for o in option_list(self.model, self.language)}
        if isinstance(value, str) and value in labels:
            return labels[value]
        text = input_text(self.model, value, timezone_of(self))
        return text.replace("T", " ") if isinstance(value, dt.datetime) else text


class IdField(Field):
    """A child row's id, so that saving updates the row instead of replacing it."""

    widget = HiddenInput()

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist and isinstance(valuelist[0], str) else ""
        self.data = int(text) if ID.match(text) and int(text) > 0 else None

    def _value(self) -> str:
        return "" if self.data is None else str(self.data)


class Values(dict):
    """A record's values read by the forms' attribute names, as WTForms reads object data.

    Passing values as an object rather than as keyword arguments keeps a field
    named like a Form argument (``prefix``, ``meta``) from clashing.
    """

    def __getattr__(self, name):
        for key in (name, name.removesuffix("_")):
            if key in self and attribute_name(key) == name:
                return self[key]
        raise AttributeError(name)


class RowsField(FieldList):
    """Child rows, named ``lines-0-product``; rows are kept in the order of their index."""

    def __init__(self, form_class, label=None, *, model: FieldModel, row_defaults, **kwargs):
        super().__init__(FormField(form_class), label, min_entries=0, **kwargs)
        self.model = model
        self.row_form = form_class
        self.row_defaults = row_defaults

    def append_entry(self, data=unset_value):
        """A new row at the end; without data it starts with the fields' defaults."""
        return super().append_entry(Values(self.row_defaults) if data is unset_value else data)

    def row_template(self):
        """A new row named ``lines-__index__-...`` for the page's "add row" template."""
        options = {
            "name": f"{self.name}-__index__",
            "id": f"{self.id}-__index__",
            "_meta": self.meta,
            "translations": self._translations,
        }
        row = self.meta.bind_field(self._form, self.unbound_field, options)
        row.process(None, Values(self.row_defaults))
        return row


# --- the registry --------------------------------------------------------------------


def option_list(fld: FieldModel, language: str) -> list[dict[str, Any]]:
    """Options with their label in ``language`` and their colour (None without one)."""
    return [
        {
            "value": o["value"],
            "label": localise(o.get("label"), language) or o["value"],
            "color": o.get("color"),
        }
        for o in fld.value_spec.get("options", [])
    ]


def reference_target(fld: FieldModel) -> dict[str, Any]:
    """What a type-ahead picker needs: where to search and which field names a record."""
    target = fld.target
    if target is None:
        app, _, entity = fld.doc.get("target", "").rpartition(".")
        return {"app": app or fld.entity.app.name, "entity": entity, "title_field": None}
    return {"app": target.app.name, "entity": target.name, "title_field": target.title_field}


def _limits(fld: FieldModel) -> dict[str, Any]:
    """HTML min/max for literal limits (``$today`` is left to the server)."""
    return {
        key: fld.doc[key]
        for key in ("min", "max")
        if key in fld.doc and not str(fld.doc[key]).startswith("$")
    }


def _text(widget):
    def build(fld: FieldModel, options: FieldOptions) -> UnboundField:
        render_kw = {}
        if "max_length" in fld.doc:
            render_kw["maxlength"] = fld.doc["max_length"]
        return TypedField(options.label, model=fld, widget=widget, **options.kwargs(**render_kw))

    return build


converts("text")(_text(TextInput()))
converts("long_text")(_text(TextArea()))
converts("email")(_text(EmailInput()))
converts("url")(_text(URLInput()))
converts("phone")(_text(TelInput()))


@converts("integer")
def integer_field(fld, options):
    widget = NumberInput(step=1, **_limits(fld))
    return TypedField(options.label, model=fld, widget=widget, **options.kwargs())


@converts("decimal", "currency", "percent")
def decimal_field(fld, options):
    step = format(Decimal(1).scaleb(-field_types.decimal_scale(fld.value_spec)), "f")
    widget = NumberInput(step=step, **_limits(fld))
    return TypedField(
        options.label, model=fld, widget=widget, **options.kwargs(inputmode="decimal")
    )


@converts("boolean")
def boolean_field(fld, options):
    return CheckField(options.label, model=fld, **options.kwargs())


@converts("date")
def date_field(fld, options):
    return TypedField(
        options.label, model=fld, widget=DateInput(), **options.kwargs(**_limits(fld))
    )


@converts("datetime")
def datetime_field(fld, options):
    # Seconds are kept when a stored value has them, so step by the second.
    return LocalDateTimeField(
        options.label, model=fld, widget=DateTimeLocalInput(), **options.kwargs(step=1)
    )


@converts("select")
def select_field(fld, options):
    choices = option_list(fld, options.language)
    return OptionField(options.label, model=fld, options=choices, **options.kwargs())


@converts("multiselect")
def multiselect_field(fld, options):
    choices = option_list(fld, options.language)
    return MultiOptionField(options.label, model=fld, options=choices, **options.kwargs())


@converts("rating")
def rating_field(fld, options):
    stars = fld.doc.get("max", 5)
    return RatingField(
        options.label,
        model=fld,
        stars=stars,
        widget=NumberInput(step=1, min=1, max=stars),
        **options.kwargs(),
    )


@converts("reference")
def reference_field(fld, options):
    target = reference_target(fld)
    render_kw = {
        "data-target": f"{target['app']}.{target['entity']}",
        "data-title-field": target["title_field"] or "",
    }
    return ReferenceField(
        options.label, model=fld, target=target, widget=HiddenInput(), **options.kwargs(**render_kw)
    )


@converts("user")
def user_field(fld, options):
    return UserField(
        options.label, model=fld, widget=HiddenInput(), **options.kwargs(**{"data-target": "user"})
    )


@converts("multi_reference")
def multi_reference_field(fld, options):
    target = reference_target(fld)
    render_kw = {"data-target": f"{target['app']}.{target['entity']}"}
    return ReferencesField(options.label, model=fld, target=target, **options.kwargs(**render_kw))


@converts("file")
def file_field(fld, options):
    accept = ",".join(fld.doc.get("accept", []))
    return FilesField(
        options.label, model=fld, **options.kwargs(**({"accept": accept} if accept else {}))
    )


@converts("signature")
def signature_field(fld, options):
    return SignatureField(options.label, model=fld, **options.kwargs())


@converts("location")
def location_field(fld, options):
    return LocationField(options.label, model=fld, **options.kwargs())


@converts("child_table")
def child_table_field(fld, options):
    if options.row_form is None:
        raise CrmError(f"'{fld.name}' needs the form of its rows ({fld.doc.get('target')})")
    kwargs = options.kwargs()
    kwargs.pop("render_kw", None)
    return RowsField(
        options.row_form, options.label, model=fld, row_defaults=options.row_defaults, **kwargs
    )


@converts("formula", "lookup", "rollup", "autonumber")
def display_field(fld, options):
    kwargs = options.kwargs()
    kwargs.pop("render_kw", None)
    return DisplayField(options.label, model=fld, language=options.language, **kwargs)
