"""The few widgets WTForms lacks: computed values, lists of ids, a position."""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms.widgets import html_params


class OutputWidget:
    """A value the engine computes: an ``<output>``, which a form never submits."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        kwargs.setdefault("data-computed", field.short_name)
        return Markup(f"<output {html_params(**kwargs)}>{escape(field._value())}</output>")


class MultiHiddenInput:
    """One hidden input per id; the type-ahead picker adds and removes them."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        inputs = "".join(
            f"<input {html_params(type='hidden', name=field.name, value=value)}>"
            for value in field.data or []
        )
        return Markup(f"<span {html_params(**kwargs)}>{inputs}</span>")


class LocationInput:
    """Latitude and longitude (filled from the browser's position) and an address."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        lat, lng, address = field.parts()
        parts = [
            f"<input {html_params(type='hidden', name=field.name + '-lat', value=lat)}>",
            f"<input {html_params(type='hidden', name=field.name + '-lng', value=lng)}>",
            "<input " + html_params(type="text", name=field.name + "-address", value=address) + ">",
        ]
        return Markup(f"<span {html_params(**kwargs)}>{''.join(parts)}</span>")
