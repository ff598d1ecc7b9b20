"""Admin pages: the industry presets, and importing one as an app (dry run first).

Every rule is the preset importer's (``presets.importing``): these views look a
preset up in the catalogue, ask for the plan (the whole import run in a
transaction and rolled back) and, once the user confirms, run the import. A
refusal is shown as the importer's problems, ``path: message``; it changed
nothing, because the import is all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from metamodel import operations
from metamodel.errors import CrmError, NotFound, Problem
from metamodel.text import humanise
from presets.catalog import PresetInfo, list_presets, load_preset
from presets.importing import ImportPlan, ImportRefused, plan_import, run_import
from presets.merge import MergeResult
from records.actor import Actor
from records.errors import Forbidden

from ..api.errors import status_of
from ..api.service import records_service
from ..i18n import language, text, translated
from ..identity import page_actor
from ..navigation import NavLink, add_nav_link, navigation
from ..runtime import runtime
from .pages import page_blueprint

blueprint = page_blueprint("admin", __name__, url_prefix="/admin")

# Designers publish apps (POST /api/v1/apps); importing a preset is publishing one.
PRESET_ROLES = frozenset({"admin", "designer"})
SAMPLE_FLAG = "with_sample_data"
# Shown folded on the plan: they follow from the fields and change no data.
TECHNICAL_OPERATIONS = (
    operations.CreateIndex,
    operations.DropIndex,
    operations.CreateForeignKey,
    operations.DropForeignKey,
)
INDUSTRIES = {
    "after_sales_service": _l("After-sales service"),
    "b2b_marketing": _l("B2B marketing"),
    "b2b_sales": _l("B2B sales"),
    "distribution": _l("Distribution"),
    "education": _l("Education"),
    "partner_channel": _l("Partner channels"),
    "real_estate": _l("Real estate"),
    "retail_membership": _l("Retail membership"),
}


def may_manage_presets(actor: Actor) -> bool:
    return bool(actor.roles & PRESET_ROLES)


@blueprint.before_request
def _admins_and_designers_only():
    if not may_manage_presets(page_actor()):
        raise Forbidden(_("only administrators and designers may manage the presets"))


# --- what a page shows of a preset ---------------------------------------------------------


@dataclass
class Link:
    label: str
    url: str | None = None


@dataclass
class PresetCard:
    name: str
    label: str
    description: str
    industry: str
    version: str
    entities: list[Link]
    workflows: list[str]
    # The installed app's version, and links to its lists the user may open.
    installed: str | None = None
    lists: list[Link] = field(default_factory=list)


def _industry(code: str | None) -> str:
    if not code:
        return ""
    return str(INDUSTRIES.get(code) or code.replace("_", " "))


def entity_labels(document: dict) -> dict[str, str]:
    """Entity name → plural label in the user's language (child tables left out)."""
    return {
        entity["name"]: text(
            entity.get("plural_label") or entity.get("label") or humanise(entity["name"])
        )
        for entity in document.get("entities") or []
        if isinstance(entity, dict)
        and isinstance(entity.get("name"), str)
        and not entity.get("child")
    }


def _installed() -> dict[str, tuple[str, list[Link]]]:
    """Installed app → (its version, links to the lists the signed-in user may read)."""
    crm = runtime()
    found = {}
    with crm.engine.connect() as conn:
        readable = {nav.name: nav for nav in navigation(crm.registry, page_actor(), conn)}
        for name in crm.registry.app_names():
            version = crm.registry.app(name, conn).stored.version
            nav = readable.get(name)
            links = [
                Link(text(entity.label), url_for("lists.list_page", app=name, entity=entity.name))
                for entity in (nav.entities if nav else [])
            ]
            found[name] = (version, links)
    return found


def _card(info: PresetInfo, installed: dict[str, tuple[str, list[Link]]]) -> PresetCard:
    document = load_preset(info.path)
    workflows = {
        item.get("name"): item.get("label")
        for item in document.get("workflows") or []
        if isinstance(item, dict)
    }
    version, lists = installed.get(info.name, (None, []))
    return PresetCard(
        name=info.name,
        label=info.text("label", language()),
        description=info.text("description", language()) if info.description else "",
        industry=_industry(info.industry),
        version=str(document.get("version", "")),
        entities=[Link(label) for label in entity_labels(document).values()],
        workflows=[text(workflows.get(name)) or humanise(name) for name in info.workflows],
        installed=version,
        lists=lists,
    )


def find_preset(name: str) -> PresetInfo:
    """A preset of the catalogue; only names it lists are read (never a path from the URL)."""
    for info in list_presets():
        if info.name == name:
            return info
    raise NotFound(_("there is no preset '%(name)s'", name=name))


# --- the presets ------------------------------------------------------------------------------


@blueprint.get("/presets")
def presets():
    installed = _installed()
    cards = [_card(info, installed) for info in list_presets()]
    return render_template("admin/presets.html", cards=cards)


# --- planning and importing ----------------------------------------------------------------


@dataclass
class Refusal:
    """Why an import was refused; what went into a merge that did not validate."""

    problems: list[Problem]
    merge: MergeResult | None = None


def _with_sample_data() -> bool:
    return request.values.get(SAMPLE_FLAG, "") in ("1", "on", "true", "yes")


def _importer() -> Actor:
    """The signed-in user, allowed to create the preset's sample records.

    The sample records come with the preset the user may import; the new app's
    permissions cannot name a designer yet, so the import acts with the admin
    role while the records keep the user's name as their creator.
    """
    actor = page_actor()
    return Actor(actor.id, actor.username, actor.roles | {"admin"})


def _options(with_sample_data: bool) -> dict:
    return {
        "with_sample_data": with_sample_data,
        "actor": _importer(),
        "records": records_service(),
    }


def _refusal(error: CrmError) -> Refusal:
    return Refusal(error.problems, error.merge if isinstance(error, ImportRefused) else None)


def _plan_page(
    info: PresetInfo,
    with_sample_data: bool,
    plan: ImportPlan | None,
    refusal: Refusal | None,
    status: int = 200,
):
    card = _card(info, _installed())
    labels = entity_labels(plan.document if plan else load_preset(info.path))
    counts = plan.sample_counts if plan else {}
    samples = [(labels.get(entity, entity), count) for entity, count in counts.items()]
    steps, technical = split_operations(plan.outcome.plan.operations if plan else [])
    page = render_template(
        "admin/preset_plan.html",
        card=card,
        steps=steps,
        technical=technical,
        with_sample_data=with_sample_data,
        plan=plan,
        refusal=refusal,
        samples=samples,
        sample_total=sum(counts.values()),
    )
    return page, status


def split_operations(planned: list) -> tuple[list[str], list[str]]:
    """The plan's steps in words, in the user's language: what users see (entities, fields),
    then indexes and keys."""
    steps, technical = [], []
    for operation in planned:
        bookkeeping = isinstance(operation, TECHNICAL_OPERATIONS)
        (technical if bookkeeping else steps).append(translated(operation.describe()))
    return steps, technical


@blueprint.route("/presets/<name>/plan", methods=["GET", "POST"])
def preset_plan(name: str):
    info = find_preset(name)
    with_sample_data = _with_sample_data()
    try:
        plan = plan_import(runtime().engine, info.path, **_options(with_sample_data))
    except CrmError as error:
        return _plan_page(info, with_sample_data, None, _refusal(error))
    return _plan_page(info, with_sample_data, plan, None)


@blueprint.post("/presets/<name>/import")
def preset_import(name: str):
    info = find_preset(name)
    with_sample_data = _with_sample_data()
    try:
        plan = run_import(
            runtime().engine,
            info.path,
            author=page_actor().username,
            **_options(with_sample_data),
        )
    except CrmError as error:
        return _plan_page(info, with_sample_data, None, _refusal(error), status_of(error))
    label = info.text("label", language())
    flash(done_message(plan, label), "success" if plan.changed else "info")
    return redirect(url_for("admin.presets", _anchor=f"preset-{info.name}"))


def done_message(plan: ImportPlan, label: str) -> str:
    """What an import did, in a sentence."""
    added = sum(plan.sample_counts.values())
    if not plan.changed:
        return _("%(app)s %(version)s: nothing to change.", app=label, version=plan.version)
    if not plan.outcome.changed:
        return ngettext(
            "Added %(num)d sample record to %(app)s.",
            "Added %(num)d sample records to %(app)s.",
            added,
            app=label,
        )
    if plan.upgrade:
        message = _(
            "Upgraded %(app)s from %(old)s to %(new)s.",
            app=label,
            old=plan.previous_version,
            new=plan.version,
        )
        conflicts = len(plan.merge.conflicts) if plan.merge else 0
        if conflicts:
            message += " " + ngettext(
                "%(num)d conflict: the app's own value was kept.",
                "%(num)d conflicts: the app's own values were kept.",
                conflicts,
            )
    else:
        message = _("Imported %(app)s %(version)s.", app=label, version=plan.version)
    if added:
        message += " " + ngettext(
            "%(num)d sample record was created.", "%(num)d sample records were created.", added
        )
    return message


# --- navigation -------------------------------------------------------------------------------


def _presets_link(actor: Actor) -> NavLink | None:
    if not may_manage_presets(actor):
        return None
    return NavLink(url_for("admin.presets"), _("Presets"))


@blueprint.record_once
def _add_nav_link(state) -> None:
    add_nav_link(state.app, _presets_link)
