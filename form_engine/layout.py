"""A form's layout as plain data for templates: tabs → sections → items, in one language.

Tabs group consecutive sections with the same ``tab``; sections without one
form an untitled tab (``named`` is false; its label is a generic "Details" in
case a template wants a tab strip anyway). Items carry their rules as data; the
template renders the initial state from :func:`form_engine.rules.evaluate_form`
(or a submission's ``states``) and the browser script keeps it current.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from metamodel.text import localise

from .definition import FormItem, FormSpec
from .fields import option_list, reference_target

UNTITLED_TAB = {"en": "Details", "zh": "详情"}


@dataclass(frozen=True)
class Item:
    field: str
    label: str
    type: str
    width: int
    help: str = ""
    required: bool = False
    # Never takes input: computed, engine-owned, declared read-only, or locked.
    read_only: bool = False
    computed: bool = False
    visible_when: Any = None
    required_when: Any = None
    read_only_when: Any = None
    full_width: bool = False
    options: tuple[dict[str, Any], ...] = ()
    target: dict[str, Any] | None = None
    # A child table's columns: the items of one row.
    columns: tuple[Item, ...] = ()

    @property
    def has_rules(self) -> bool:
        return any(
            r is not None for r in (self.visible_when, self.required_when, self.read_only_when)
        )


@dataclass(frozen=True)
class Section:
    label: str
    columns: int
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Tab:
    label: str
    named: bool
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Layout:
    app: str
    entity: str
    form: str | None
    label: str
    public: bool
    tabs: tuple[Tab, ...]

    def items(self) -> list[Item]:
        return [i for tab in self.tabs for section in tab.sections for i in section.items]

    def item(self, name: str) -> Item:
        for candidate in self.items():
            if candidate.field == name:
                return candidate
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def layout(
    spec: FormSpec, language: str = "en", *, locked: frozenset[str] | set[str] = frozenset()
) -> Layout:
    """The layout of ``spec`` in ``language``; ``locked`` fields show read-only."""
    tabs: list[Tab] = []
    current_tab: Any = object()
    for index, section_doc in enumerate(spec.sections):
        items = tuple(
            make_item(spec, item, language, locked)
            for item in spec.items.values()
            if item.section == index
        )
        section = Section(
            localise(section_doc.get("section"), language), section_doc.get("columns", 1), items
        )
        tab = section_doc.get("tab")
        if not tabs or tab != current_tab:
            label = localise(tab if tab is not None else UNTITLED_TAB, language)
            tabs.append(Tab(label, tab is not None, (section,)))
            current_tab = tab
        else:
            tabs[-1] = Tab(tabs[-1].label, tabs[-1].named, (*tabs[-1].sections, section))
    return Layout(
        app=spec.app.name,
        entity=spec.entity.name,
        form=spec.name,
        label=localise(spec.doc.get("label") or spec.entity.label, language),
        public=bool(spec.doc.get("public")),
        tabs=tuple(tabs),
    )


def make_item(spec: FormSpec, item: FormItem, language: str, locked) -> Item:
    fld = item.field
    columns: tuple[Item, ...] = ()
    if item.name in spec.children:
        child = spec.children[item.name]
        columns = tuple(make_item(child, i, language, frozenset()) for i in child.items.values())
    options = ()
    if fld.value_spec.get("options"):
        options = tuple(option_list(fld, language))
    target = reference_target(fld) if fld.type_name in ("reference", "multi_reference") else None
    return Item(
        field=item.name,
        label=localise(item.label or fld.label, language),
        type=fld.type_name,
        width=item.width,
        help=localise(item.help or fld.doc.get("help"), language),
        required=item.static_required,
        read_only=item.display_only or item.name in locked,
        computed=fld.computed or fld.type_name == "autonumber",
        visible_when=item.rules.get("visible_when"),
        required_when=item.rules.get("required_when"),
        read_only_when=item.rules.get("read_only_when"),
        full_width=fld.type_name == "child_table",
        options=options,
        target=target,
        columns=columns,
    )
