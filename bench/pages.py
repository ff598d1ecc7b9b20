"""Page benchmark: server time of every page at 1,000,000 deals (issue 4: under 100 ms).

Builds (once, then reuses) a database of the ``sales_pipeline`` preset with N deals
(default 1,000,000) spread over 10,000 accounts, two contacts and ten interactions
per account, a line on every other deal, a ``create`` audit entry per record, a few
users, open discount approvals in the sales managers' inboxes and some history on
the records whose pages are measured. Then, in this process, the Flask app answers
each page through its test client: a few warm-up requests per page, then
``--rounds`` rounds in which every page is asked once (in a rotating order, so all
see the same machine load). Each page's p50 and p95 are compared with 100 ms.
The dashboard page shows snapshots: its refresh endpoint, which computes them over
the whole table, is timed first (and leaves them in place), as information only.

    python -m bench.pages [--db sqlite|postgresql|both] [--rows 1000000] [--rounds 20]
                          [--accounts 10000] [--warmup 3] [--only NAME,...]
                          [--rebuild] [--profile NAME,...]

The filled database is kept for the next run with the same sizes: a SQLite file
``bench/results/data/pages-<rows>_<accounts>_v<N>.db`` and a PostgreSQL schema
``bench_pages_<rows>_<accounts>_v<N>`` (``--rebuild`` fills it again; drop the
schema / delete the file when done). On reuse the current app document is applied
first, so an index added to the preset since is built before measuring.

Prints a table and writes ``bench/results/pages-<db>.json``; exits 1 when a page
misses the target (a known miss is marked with its reason, and still fails), 2
when a page answers other than expected.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, select, text

from app import create_app
from app.accounts import create_user
from metamodel import store
from metamodel.db import make_engine
from metamodel.publish import apply_document
from metamodel.store import ensure_system_tables
from metamodel.system_tables import users
from metamodel.versions import digest, next_patch
from records.actor import Actor
from records.service import Records
from workflow_engine import Workflows

from .harness import RESULTS, percentile, run_databases

APP = "sales_pipeline"
PRESET = Path(__file__).resolve().parents[1] / "presets" / "sales_pipeline.json"
POSTGRESQL_URL = "postgresql+psycopg://127.0.0.1:5432/test"
TARGET_MS = 100.0
# Bump when the generated data changes: kept databases of another version are not reused.
DATA_VERSION = 1
PASSWORD = "bench-pw"
FAST_HASH = "pbkdf2:sha256:1"
# (username, roles, manager)
PEOPLE = [
    ("root", ["admin"], None),
    ("boss", ["sales_manager"], None),
    ("wang", ["sales_manager"], "boss"),
    ("li", ["sales"], "wang"),
    ("zhao", ["sales"], "wang"),
    ("chen", ["finance"], None),
]
CONTACTS_PER_ACCOUNT = 2
INTERACTIONS_PER_ACCOUNT = 10
APPROVALS = 150  # open requests: more than the inbox shows at once (100)
APPROVED = 30  # of those, decided by wang (his "done" box)
ACCOUNT_ID = 42
# A saved view a user would make: the won deals, largest first.
BENCH_VIEW = {
    "name": "won_by_amount",
    "entity": "deal",
    "type": "list",
    "label": {"en": "Won, by amount"},
    "columns": ["title", "account", "stage", "amount", "expected_close"],
    "filter": {"==": [{"var": "stage"}, "won"]},
    "sort": [{"field": "amount", "dir": "desc"}],
}
# Pages that miss the target for a reason the page code cannot remove, by database.
# They still fail the run: the reason says where the fix belongs.
KNOWN_MISSES: dict[str, dict[str, str]] = {}


class Unexpected(Exception):
    """A page answered other than the benchmark expects."""


# --- the database -------------------------------------------------------------------


def app_document() -> dict:
    doc = json.loads(PRESET.read_text(encoding="utf-8"))
    doc.pop("sample_data", None)
    doc["views"] = [v for v in doc.get("views", []) if v["name"] != BENCH_VIEW["name"]]
    doc["views"].append(BENCH_VIEW)
    return doc


@dataclass
class Kept:
    """A database kept between runs under a key: its URL, and whether a build finished in it."""

    db: str
    key: str
    url: str
    ready: bool

    @classmethod
    def open(cls, db: str, key: str, rebuild: bool) -> Kept:
        """The kept database; emptied first when its build did not finish (or ``rebuild``)."""
        if db == "sqlite":
            path = RESULTS / "data" / f"pages-{key}.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            ready = Path(f"{path}.ready").exists() and path.exists() and not rebuild
            if not ready:
                Path(f"{path}.ready").unlink(missing_ok=True)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return cls(db, key, f"sqlite:///{path}", ready)
        schema = f"bench_pages_{key}"
        with admin_connection() as conn:
            comment = conn.execute(
                text(
                    "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                    "WHERE nspname = :schema"
                ),
                {"schema": schema},
            ).scalar()
            ready = comment == "ready" and not rebuild
            if not ready:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        return cls(db, key, f"{POSTGRESQL_URL}?options=-csearch_path%3D{schema}", ready)

    def mark_ready(self) -> None:
        if self.db == "sqlite":
            marker = RESULTS / "data" / f"pages-{self.key}.db.ready"
            marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
            return
        with admin_connection() as conn:
            conn.execute(text(f"COMMENT ON SCHEMA \"bench_pages_{self.key}\" IS 'ready'"))
        self.ready = True


@contextlib.contextmanager
def admin_connection() -> Iterator[Connection]:
    engine = make_engine(POSTGRESQL_URL)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def apply_current(engine: Engine, doc: dict) -> bool:
    """Publish ``doc`` over a kept database's app (as a new patch version if it differs).

    The same document is applied again too: that builds what the database lacks
    for it, such as a search index added to the planner since the database was built.
    """
    with engine.connect() as conn:
        current = store.current(conn, APP)
    if current is not None:
        same = digest(dict(doc, version=current.version)) == current.digest
        doc = dict(doc, version=current.version if same else next_patch(current.version))
    return apply_document(engine, doc, author="bench").changed


def people_of(engine: Engine) -> dict[str, Actor]:
    with engine.connect() as conn:
        rows = conn.execute(select(users.c.id, users.c.username, users.c.roles))
        return {r.username: Actor(r.id, r.username, frozenset(r.roles)) for r in rows}


# Row g (1-based) of each table; both databases get the same values.
#   account g: tier A/B/C, industry cycling;
#   contact g: account 1 + (g - 1) % A (so contact a belongs to account a);
#   deal g: account 1 + g % A, owner li (even g) or zhao (odd g), stage cycling through
#     the six options (1/6 won), amount (g * 7919 mod 10^9) cents, expected close in 2025;
#   interaction g: account 1 + g % A, contact = that account's first contact, a moment
#     in the 600 days from 2025-01-01, channel cycling.
STAGES = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
CHANNELS = ["phone", "email", "wechat", "visit", "web"]

PG_FILL = [
    """
    INSERT INTO sales_pipeline__account
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         code, name, industry, tier, account_manager)
    SELECT g, now(), now(), :root, :root, :root, 1, 'ACC-2025-' || lpad(g::text, 5, '0'),
           'Account ' || g, (ARRAY['manufacturing', 'retail', 'finance', 'other'])[1 + g % 4],
           (ARRAY['A', 'B', 'C'])[1 + g % 3], :wang
    FROM generate_series(1, :accounts) AS g
    """,
    """
    INSERT INTO sales_pipeline__contact
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         full_name, account, email, phone, preferred_channel, consent_marketing)
    SELECT g, now(), now(), :root, :root, :root, 1, 'Contact ' || g, 1 + (g - 1) % :accounts,
           'contact' || g || '@example.com', '+86 138 0000 ' || lpad((g % 10000)::text, 4, '0'),
           (ARRAY['phone', 'email', 'wechat', 'visit'])[1 + g % 4], g % 2 = 0
    FROM generate_series(1, :contacts) AS g
    """,
    """
    INSERT INTO sales_pipeline__deal
        (id, created_at, updated_at, created_by, updated_by, owner, version, title, account,
         account_tier, stage, amount, probability, weighted_amount, expected_close,
         discount_pct, approval_state)
    SELECT g, timestamptz '2025-01-01 00:00:00+00' + g * interval '20 seconds',
           timestamptz '2025-01-01 00:00:00+00' + g * interval '20 seconds',
           CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END,
           CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END,
           CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END, 1,
           'Deal ' || g, 1 + g % :accounts,
           (ARRAY['A', 'B', 'C'])[1 + (1 + g % :accounts) % 3],
           (ARRAY['lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost'])[1 + g % 6],
           ((g * 7919) % 1000000000) / 100.0, (g % 11) * 10,
           round(((g * 7919) % 1000000000) * ((g % 11) * 10) / 10000.0, 2),
           date '2025-01-01' + (g % 365)::int, 0, 'draft'
    FROM generate_series(1::bigint, :rows) AS g
    """,
    """
    INSERT INTO sales_pipeline__deal_line
        (created_at, updated_at, created_by, updated_by, owner, version, parent_id, row_order,
         product, quantity, unit_price, line_total)
    SELECT now(), now(), :root, :root, :root, 1, g, 0, 'SKU-' || (g % 100), 1 + g % 5,
           (g % 1000) * 10.00, (1 + g % 5) * (g % 1000) * 10.00
    FROM generate_series(2::bigint, :rows, 2) AS g
    """,
    """
    INSERT INTO sales_pipeline__interaction
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         subject, account, contact, channel, occurred_at, satisfaction, summary)
    SELECT g, now(), now(), :li, :li, CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END, 1,
           'Call ' || g, 1 + g % :accounts, 1 + g % :accounts,
           (ARRAY['phone', 'email', 'wechat', 'visit', 'web'])[1 + g % 5],
           timestamptz '2025-01-01 00:00:00+00' + (g % 600) * interval '1 day'
               + (8 + g % 9) * interval '1 hour',
           1 + g % 5, 'Talked about the order of ' || g
    FROM generate_series(1, :interactions) AS g
    """,
    """
    INSERT INTO crm_audit (app, entity, record_id, action, actor_id, at, changes)
    SELECT 'sales_pipeline', 'deal', id, 'create', owner, created_at, '{}'::json
    FROM sales_pipeline__deal
    """,
    """
    INSERT INTO crm_audit (app, entity, record_id, action, actor_id, at, changes)
    SELECT 'sales_pipeline', 'account', id, 'create', owner, created_at, '{}'::json
    FROM sales_pipeline__account
    """,
    """
    INSERT INTO crm_audit (app, entity, record_id, action, actor_id, at, changes)
    SELECT 'sales_pipeline', 'interaction', id, 'create', owner, created_at, '{}'::json
    FROM sales_pipeline__interaction
    """,
    """
    UPDATE sales_pipeline__account AS a SET open_deal_value = coalesce(s.total, 0)
    FROM (SELECT account, sum(amount) AS total FROM sales_pipeline__deal
          WHERE stage NOT IN ('won', 'lost') GROUP BY account) AS s
    WHERE s.account = a.id
    """,
]
for _table in ("account", "contact", "deal", "interaction"):
    PG_FILL.append(
        f"SELECT setval(pg_get_serial_sequence('sales_pipeline__{_table}', 'id'), "
        f"(SELECT max(id) FROM sales_pipeline__{_table}))"
    )

SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _seq(limit: str, start: int = 1, step: int = 1) -> str:
    return (
        f"WITH RECURSIVE seq(g) AS (SELECT {start} UNION ALL "
        f"SELECT g + {step} FROM seq WHERE g + {step} <= {limit})"
    )


def _case(expression: str, values: list[str]) -> str:
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"CASE {expression} {whens} END"


# ExactDecimal columns hold integers scaled by 100 on SQLite.
SQLITE_FILL = [
    f"""
    {_seq(":accounts")}
    INSERT INTO sales_pipeline__account
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         code, name, industry, tier, account_manager)
    SELECT g, {SQLITE_NOW}, {SQLITE_NOW}, :root, :root, :root, 1,
           'ACC-2025-' || printf('%05d', g), 'Account ' || g,
           {_case("g % 4", ["manufacturing", "retail", "finance", "other"])},
           {_case("g % 3", ["A", "B", "C"])}, :wang
    FROM seq
    """,
    f"""
    {_seq(":contacts")}
    INSERT INTO sales_pipeline__contact
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         full_name, account, email, phone, preferred_channel, consent_marketing)
    SELECT g, {SQLITE_NOW}, {SQLITE_NOW}, :root, :root, :root, 1, 'Contact ' || g,
           1 + (g - 1) % :accounts, 'contact' || g || '@example.com',
           '+86 138 0000 ' || printf('%04d', g % 10000),
           {_case("g % 4", ["phone", "email", "wechat", "visit"])}, g % 2 = 0
    FROM seq
    """,
    f"""
    {_seq(":rows")}
    INSERT INTO sales_pipeline__deal
        (id, created_at, updated_at, created_by, updated_by, owner, version, title, account,
         account_tier, stage, amount, probability, weighted_amount, expected_close,
         discount_pct, approval_state)
    SELECT g, strftime('%Y-%m-%d %H:%M:%f', '2025-01-01', '+' || (g * 20) || ' seconds'),
           strftime('%Y-%m-%d %H:%M:%f', '2025-01-01', '+' || (g * 20) || ' seconds'),
           CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END,
           CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END,
           CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END, 1,
           'Deal ' || g, 1 + g % :accounts,
           {_case("(1 + g % :accounts) % 3", ["A", "B", "C"])},
           {_case("g % 6", STAGES)},
           (g * 7919) % 1000000000, (g % 11) * 1000,
           (((g * 7919) % 1000000000) * ((g % 11) * 10) + 50) / 100,
           date('2025-01-01', '+' || (g % 365) || ' days'), 0, 'draft'
    FROM seq
    """,
    f"""
    {_seq(":rows", start=2, step=2)}
    INSERT INTO sales_pipeline__deal_line
        (created_at, updated_at, created_by, updated_by, owner, version, parent_id, row_order,
         product, quantity, unit_price, line_total)
    SELECT {SQLITE_NOW}, {SQLITE_NOW}, :root, :root, :root, 1, g, 0, 'SKU-' || (g % 100),
           1 + g % 5, (g % 1000) * 1000, (1 + g % 5) * (g % 1000) * 1000
    FROM seq
    """,
    f"""
    {_seq(":interactions")}
    INSERT INTO sales_pipeline__interaction
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         subject, account, contact, channel, occurred_at, satisfaction, summary)
    SELECT g, {SQLITE_NOW}, {SQLITE_NOW}, :li, :li, CASE WHEN g % 2 = 0 THEN :li ELSE :zhao END,
           1, 'Call ' || g, 1 + g % :accounts, 1 + g % :accounts,
           {_case("g % 5", CHANNELS)},
           strftime('%Y-%m-%d %H:%M:%f', '2025-01-01', '+' || (g % 600) || ' days',
                    '+' || (8 + g % 9) || ' hours'),
           1 + g % 5, 'Talked about the order of ' || g
    FROM seq
    """,
    """
    INSERT INTO crm_audit (app, entity, record_id, action, actor_id, at, changes)
    SELECT 'sales_pipeline', 'deal', id, 'create', owner, created_at, '{}'
    FROM sales_pipeline__deal
    """,
    """
    INSERT INTO crm_audit (app, entity, record_id, action, actor_id, at, changes)
    SELECT 'sales_pipeline', 'account', id, 'create', owner, created_at, '{}'
    FROM sales_pipeline__account
    """,
    """
    INSERT INTO crm_audit (app, entity, record_id, action, actor_id, at, changes)
    SELECT 'sales_pipeline', 'interaction', id, 'create', owner, created_at, '{}'
    FROM sales_pipeline__interaction
    """,
    """
    UPDATE sales_pipeline__account SET open_deal_value = coalesce((
        SELECT sum(amount) FROM sales_pipeline__deal AS d
        WHERE d.account = sales_pipeline__account.id AND d.stage NOT IN ('won', 'lost')), 0)
    """,
]


def fill(engine: Engine, people: dict[str, Actor], rows: int, accounts: int, log) -> None:
    params = {
        "rows": rows,
        "accounts": accounts,
        "contacts": accounts * CONTACTS_PER_ACCOUNT,
        "interactions": accounts * INTERACTIONS_PER_ACCOUNT,
        **{name: people[name].id for name in ("root", "wang", "li", "zhao")},
    }
    statements = PG_FILL if engine.dialect.name == "postgresql" else SQLITE_FILL
    with engine.begin() as conn:
        for statement in statements:
            started = time.perf_counter()
            conn.execute(text(statement), params)
            first = " ".join(statement.split())[:60]
            log(f"    {time.perf_counter() - started:6.1f} s  {first}")


def analyse(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("ANALYZE")
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def approvals_and_history(engine: Engine, people: dict[str, Actor], rows: int) -> None:
    """Open approvals in the managers' inboxes (some decided) and history on the measured
    records, through the record service and the workflow engine as users would make them."""
    records = Records(engine)
    flow = Workflows(records)
    li, wang, root = people["li"], people["wang"], people["root"]
    # li's deals (even ids) near the middle of the table.
    deals = [rows // 2 + 2 * (i + 1) for i in range(APPROVALS)]
    for index, deal in enumerate(deals):
        records.update(li, APP, "deal", deal, {"discount_pct": 10})
        outcome = flow.fire(li, APP, "deal", deal, "request_discount")
        if outcome["state"] != "pending":
            raise Unexpected(f"request_discount left deal {deal} {outcome['state']}")
        if index < APPROVED:
            tasks = outcome["approval"]["steps"][0]["tasks"]
            task = next(t["id"] for t in tasks if t["assignee"] == "wang")
            flow.act(wang, task, "approve", {"comment": "ok"})
    deal = detail_deal(rows)
    for amount in ("1200.00", "1300.50", "99000.00", "120000.00", "118000.00"):
        records.update(li, APP, "deal", deal, {"amount": amount})
    records.update(li, APP, "deal", deal, {"stage": "proposal", "probability": 40})
    for site in ("https://a.example.com", "https://b.example.com", "https://c.example.com"):
        records.update(root, APP, "account", ACCOUNT_ID, {"website": site})


def detail_deal(rows: int) -> int:
    """A draft deal of li's in the middle of the table, with a line (an even id)."""
    return rows // 2


def build(engine: Engine, doc: dict, rows: int, accounts: int, log) -> float:
    started = time.perf_counter()
    ensure_system_tables(engine)
    with engine.begin() as conn:
        for name, roles, manager in PEOPLE:
            create_user(conn, name, roles, password=PASSWORD, manager=manager, method=FAST_HASH)
    apply_document(engine, doc, author="bench")
    people = people_of(engine)
    fill(engine, people, rows, accounts, log)
    analyse(engine)
    approvals_and_history(engine, people, rows)
    return time.perf_counter() - started


# --- the pages ----------------------------------------------------------------------


@dataclass
class Page:
    name: str
    user: str
    path: str
    expect: str  # a regular expression the answer must match (what shows it worked)
    what: str


def pages(rows: int) -> list[Page]:
    deals = f"/a/{APP}/deal"
    deal = detail_deal(rows)
    account = f"/a/{APP}/account/{ACCOUNT_ID}"
    row = r'<tr data-id="\d+"'
    # Page 200 of the won deals has rows from 60,000 deals up (smaller runs check less).
    deep = row if rows // len(STAGES) >= 200 * 50 else ""
    return [
        Page("home", "root", "/", "sales_pipeline", "home page (navigation, approval count)"),
        Page("list_p1", "root", deals, row, "deal list, default view, page 1"),
        Page("list_p200", "root", f"{deals}?page=200", row, "deal list, page 200"),
        Page("list_own_p1", "li", deals, row, "deal list as a sales rep (read:own), page 1"),
        Page(
            "view_p1",
            "root",
            f"{deals}?view=won_by_amount",
            row,
            "saved view stage=won by -amount, p1",
        ),
        Page(
            "view_p200",
            "root",
            f"{deals}?view=won_by_amount&page=200",
            deep,
            "saved view stage=won by -amount, page 200",
        ),
        Page(
            "search_q",
            "root",
            f"{deals}?q=Deal+{rows - 1234}",
            row,
            "deal list, search q (rare text)",
        ),
        Page(
            "sort_close",
            "root",
            f"{deals}?sort=-expected_close",
            row,
            "deal list sorted by expected close",
        ),
        Page("kanban", "root", f"{deals}/kanban", "data-value", "pipeline board (6 columns)"),
        Page(
            "calendar",
            "root",
            f"{deals}/calendar?month=2025-06",
            r"Deal \d+",
            "expected-close calendar, June 2025",
        ),
        Page("bin", "root", f"{deals}/bin", "", "deal recycle bin"),
        Page("deal_detail", "root", f"{deals}/{deal}", f"Deal {deal}", "deal detail page"),
        Page("deal_timeline", "root", f"{deals}/{deal}/timeline", "", "deal timeline tab"),
        Page("deal_history", "root", f"{deals}/{deal}/history", "120", "deal history tab"),
        Page(
            "deal_actions",
            "li",
            f"/w/{APP}/deal/{deal}/actions",
            "",
            "deal workflow actions panel",
        ),
        Page("deal_diagram", "li", f"/w/{APP}/deal/{deal}/diagram", "", "deal workflow diagram"),
        Page(
            "account_detail", "root", account, f"Account {ACCOUNT_ID}", "account detail (related)"
        ),
        Page("account_timeline", "root", f"{account}/timeline", "Call ", "account timeline"),
        Page("account_history", "root", f"{account}/history", "example.com", "account history"),
        Page("deal_new", "root", f"{deals}/new", "<form", "new-deal form"),
        Page("deal_edit", "root", f"{deals}/{deal}/edit", "<form", "deal edit form"),
        Page(
            "account_search",
            "root",
            f"/a/{APP}/account/search?q=ount+424",
            "Account 424",
            "reference type-ahead, account by substring",
        ),
        Page(
            "account_options",
            "root",
            f"{deals}/options/account?q=ount+424",
            "Account 424",
            "list filter type-ahead, account by substring",
        ),
        Page("inbox", "wang", "/approvals", "Deal ", "approvals inbox (waiting)"),
        Page("inbox_done", "wang", "/approvals?box=done", "Deal ", "approvals inbox (done)"),
        # From its snapshots (the refresh endpoint is timed apart): numbers shown, no refresh
        # asked of the browser.
        Page("dashboard", "root", DASHBOARD, FROM_SNAPSHOTS, "sales KPIs, from snapshots"),
    ]


DASHBOARD = f"/a/{APP}/dashboards/sales_kpis"
FROM_SNAPSHOTS = r'\A(?![\s\S]*hx-trigger="load")[\s\S]*class="big-number"'
# The dashboard's snapshots stay fresh for the whole run: the page measured is the one
# users see when cron refreshes them (a stale one costs the same, plus a refresh asked).
SNAPSHOT_MAX_AGE = 24 * 3600
REFRESHES = 3


def refresh_dashboard(web_app, rounds: int, log) -> dict[str, Any]:
    """Time the dashboard's refresh endpoint (what a page with old snapshots asks for): it
    computes every widget over the whole table, so it is information, not held to the
    target. It leaves the snapshots the page is then measured with."""
    client = signed_in(web_app, "root")
    page = client.get(DASHBOARD).get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    ms = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post(f"{DASHBOARD}/refresh", headers=headers)
        ms.append((time.perf_counter() - started) * 1000)
        body = response.get_data(as_text=True)
        if response.status_code != 200 or 'class="big-number"' not in body:
            raise Unexpected(f"dashboard refresh: {response.status_code}\n{body[:1500]}")
    log(f"  dashboard refresh: {statistics.median(ms):.0f} ms (p50 of {rounds})")
    return {
        "path": f"{DASHBOARD}/refresh",
        "what": "recompute and store the dashboard's snapshots (POST, as the page asks)",
        "n": rounds,
        "p50_ms": statistics.median(ms),
        "max_ms": max(ms),
    }


def csrf_token(client) -> str:
    page = client.get("/sign-in").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def signed_in(web_app, username: str):
    client = web_app.test_client()
    response = client.post(
        "/sign-in",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    if response.status_code != 302:
        raise Unexpected(f"{username} could not sign in: {response.status_code}")
    return client


class QueryCounter:
    """SQL statements the app's engine runs, per request."""

    def __init__(self, engine: Engine):
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1


def request(client, page: Page) -> tuple[float, float, str]:
    started, cpu = time.perf_counter(), time.process_time()
    response = client.get(page.path)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    body = response.get_data(as_text=True)
    if response.status_code != 200:
        raise Unexpected(f"{page.name} ({page.path}): {response.status_code}\n{body[:1500]}")
    if page.expect and not re.search(page.expect, body):
        raise Unexpected(f"{page.name} ({page.path}) does not show /{page.expect}/\n{body[:1500]}")
    return elapsed, cpu, body


def measure(web_app, chosen: list[Page], rounds: int, warmup: int, log) -> dict[str, dict]:
    clients = {name: signed_in(web_app, name) for name in {p.user for p in chosen}}
    counter = QueryCounter(web_app.extensions["crm"].engine)
    queries: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for page in chosen:
        for _ in range(warmup):
            request(clients[page.user], page)
        counter.count = 0
        _, _, body = request(clients[page.user], page)
        queries[page.name], sizes[page.name] = counter.count, len(body)
    times: dict[str, list[float]] = {p.name: [] for p in chosen}
    cpus: dict[str, list[float]] = {p.name: [] for p in chosen}
    for index in range(rounds):
        shift = index % len(chosen)
        for page in chosen[shift:] + chosen[:shift]:
            elapsed, cpu, _ = request(clients[page.user], page)
            times[page.name].append(elapsed)
            cpus[page.name].append(cpu)
        if (index + 1) % max(1, rounds // 4) == 0:
            log(f"  round {index + 1}/{rounds}")
    results = {}
    for page in chosen:
        ms = [t * 1000 for t in times[page.name]]
        results[page.name] = {
            "path": page.path,
            "user": page.user,
            "what": page.what,
            "n": len(ms),
            "p50_ms": statistics.median(ms),
            "p95_ms": percentile(ms, 0.95),
            "max_ms": max(ms),
            "cpu_p50_ms": statistics.median(c * 1000 for c in cpus[page.name]),
            "queries": queries[page.name],
            "bytes": sizes[page.name],
        }
    return results


def profile(web_app, chosen: list[Page], calls: int, db: str) -> list[str]:
    clients = {name: signed_in(web_app, name) for name in {p.user for p in chosen}}
    written = []
    for page in chosen:
        request(clients[page.user], page)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            request(clients[page.user], page)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
        path = RESULTS / f"pages-{db}-{page.name}-profile.txt"
        path.write_text(out.getvalue())
        written.append(str(path))
    return written


# --- running ------------------------------------------------------------------------


def run(db: str, options: argparse.Namespace, log) -> dict[str, Any]:
    result: dict[str, Any] = {
        "db": db,
        "rows": options.rows,
        "accounts": options.accounts,
        "load_before": os.getloadavg(),
    }
    doc = app_document()
    key = f"{options.rows}_{options.accounts}_v{DATA_VERSION}"
    kept = Kept.open(db, key, options.rebuild)
    engine = make_engine(kept.url)
    try:
        if kept.ready:
            log(f"  reusing the kept database ({key})")
            ensure_system_tables(engine)  # tables added since it was built (snapshots)
            started = time.perf_counter()
            if apply_current(engine, doc):
                seconds = time.perf_counter() - started
                log(f"  applied the document (changed, or repaired) in {seconds:.1f} s")
        else:
            log(f"  building {options.rows:,} deals, {options.accounts:,} accounts…")
            result["build_seconds"] = build(engine, doc, options.rows, options.accounts, log)
            kept.mark_ready()
            log(f"  built in {result['build_seconds']:.1f} s")
    finally:
        engine.dispose()
    chosen = [p for p in pages(options.rows) if not options.only or p.name in options.only]
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as instance:
        web_app = create_app(
            {
                "database_url": kept.url,
                "instance_path": instance,
                "secret_key": "bench",
                "secure_cookies": False,
                "dashboards": {"snapshot_max_age_seconds": SNAPSHOT_MAX_AGE},
            }
        )
        try:
            if any(page.name == "dashboard" for page in chosen):
                result["information"] = {
                    "dashboard_refresh": refresh_dashboard(web_app, REFRESHES, log)
                }
            result["pages"] = measure(web_app, chosen, options.rounds, options.warmup, log)
            if options.profile:
                profiled = [p for p in chosen if p.name in options.profile]
                result["profiles"] = profile(web_app, profiled, options.profile_calls, db)
        finally:
            web_app.extensions["crm"].engine.dispose()
    result["load_after"] = os.getloadavg()
    for name, page in result["pages"].items():
        page["passed"] = page["p95_ms"] < TARGET_MS
        known = KNOWN_MISSES.get(name, {}).get(db)
        if known and not page["passed"]:
            page["known_miss"] = known
    result["passed"] = all(p["passed"] for p in result["pages"].values())
    return result


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['db']}: {result['rows']:,} deals, {result['accounts']:,} accounts; "
        f"load average {result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after"
    )
    header = (
        f"{'page':<17} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8} {'queries':>7}  "
        f"verdict (p95 < {TARGET_MS:.0f} ms)"
    )
    print(header)
    print("-" * len(header))
    known = []
    for name, page in result["pages"].items():
        verdict = "PASS" if page["passed"] else "FAIL"
        if page.get("known_miss"):
            known.append(f"  {name}: {page['known_miss']}")
            verdict += f" (known miss {len(known)})"
        print(
            f"{name:<17} {page['p50_ms']:8.1f} {page['p95_ms']:8.1f} {page['cpu_p50_ms']:8.1f} "
            f"{page['queries']:7d}  {verdict}"
        )
    if known:
        print("known misses (the page code cannot remove them; see bench/README.md):")
        for number, line in enumerate(known, start=1):
            print(f" {number}.{line}")
    for name, info in result.get("information", {}).items():
        print(
            f"information, not held to the target: {name} p50 {info['p50_ms']:.0f} ms, "
            f"max {info['max_ms']:.0f} ms ({info['what']})"
        )
    print(f"overall: {'PASS' if result['passed'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", help="measure only these pages (comma-separated names)")
    parser.add_argument("--rebuild", action="store_true", help="fill the kept database again")
    parser.add_argument("--profile", help="cProfile these pages afterwards (comma-separated)")
    parser.add_argument("--profile-calls", type=int, default=20)
    options = parser.parse_args(argv)
    known = {p.name for p in pages(options.rows)}
    for flag in ("only", "profile"):
        names = set(getattr(options, flag).split(",")) if getattr(options, flag) else set()
        if names - known:
            parser.error(f"--{flag}: no page named {', '.join(sorted(names - known))}")
        setattr(options, flag, names)
    if options.rows < 1000 or options.accounts < 100 or options.rows < options.accounts:
        parser.error("use at least 1,000 rows and 100 accounts, and more rows than accounts")
    return run_databases("pages", options, run, print_table, Unexpected, "unexpected answer")


if __name__ == "__main__":
    sys.exit(main())
