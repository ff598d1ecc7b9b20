"""Baseline for ``bench.records_crud``: the deal tables of ``sales_pipeline``, written by hand.

The same physical tables the metadata path publishes (``sales_pipeline__deal``,
``sales_pipeline__deal_line``, ``sales_pipeline__account`` and the system table
``crm_audit``), declared as plain SQLAlchemy Core tables with the same columns
and column types, and hand-written functions that do the work the record
service does for list, get and create, as a developer would code it for this
one model:

* permission: a fixed table of roles (admin may do everything);
* list: live deals with ``stage = 'won'``, ``ORDER BY amount DESC, id DESC``,
  ``LIMIT/OFFSET``, the capped count (``COUNT`` over a ``LIMIT 10001``
  subquery, like ``records.query.count``), the page's child lines in one query,
  serialised to JSON-able dicts (decimals as strings, datetimes ISO with ``Z``);
* get: the deal by id, its lines, serialised;
* create: validate the input, check the account exists and read its tier (the
  ``account_tier`` lookup), compute ``weighted_amount`` and each line's
  ``line_total``, insert the deal and its lines, write the audit row, recompute
  the account's ``open_deal_value`` rollup and write it when it changed, then
  read the new deal back and serialise it — all in one transaction.

The rollup is recomputed with one ``SUM`` in SQL (``rollup="sql"``, what a
hand-written model does, and what ``records.computed`` now does too).
``rollup="rows"`` instead loads the account's deals and sums in Python, as
``records.computed`` used to; the benchmark reports it separately, for
reference, so the cost of that algorithm stays visible.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)

from metamodel.db import IMMEDIATE
from metamodel.sqltypes import UTC, ExactDecimal, UtcDateTime

COUNT_CAP = 10_000
CENT = Decimal("0.01")
STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
CLOSED = ("won", "lost")
PERMISSIONS = {
    "sales_manager": {"read", "create"},
    "finance": {"read"},
}

metadata = MetaData()


def _id():
    return BigInteger().with_variant(Integer, "sqlite")


def _system_columns() -> list[Column]:
    return [
        Column("id", _id(), primary_key=True),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("created_by", BigInteger),
        Column("updated_by", BigInteger),
        Column("owner", BigInteger),
        Column("version", Integer, nullable=False),
        Column("deleted_at", UtcDateTime),
    ]


account = Table(
    "sales_pipeline__account",
    metadata,
    *_system_columns(),
    Column("code", String(64)),
    Column("name", String(200), nullable=False),
    Column("industry", String(100)),
    Column("tier", String(100)),
    Column("website", String(2000)),
    Column("annual_revenue", ExactDecimal(18, 2)),
    Column("account_manager", BigInteger),
    Column("open_deal_value", ExactDecimal(18, 2)),
    Column("notes", Text),
)

deal = Table(
    "sales_pipeline__deal",
    metadata,
    *_system_columns(),
    Column("title", String(255), nullable=False),
    Column("account", BigInteger, nullable=False),
    Column("account_tier", String(100)),
    Column("stage", String(100)),
    Column("amount", ExactDecimal(18, 2)),
    Column("probability", ExactDecimal(18, 2)),
    Column("weighted_amount", ExactDecimal(18, 2)),
    Column("expected_close", Date),
    Column("lost_reason", Text),
    Column("discount_pct", ExactDecimal(18, 2)),
    Column("approval_state", String(100)),
)

deal_line = Table(
    "sales_pipeline__deal_line",
    metadata,
    *_system_columns(),
    Column("parent_id", BigInteger, nullable=False),
    Column("row_order", Integer, nullable=False),
    Column("product", String(255), nullable=False),
    Column("quantity", BigInteger),
    Column("unit_price", ExactDecimal(18, 2)),
    Column("line_total", ExactDecimal(18, 2)),
)

audit = Table(
    "crm_audit",
    metadata,
    Column("id", _id(), primary_key=True),
    Column("app", String(30), nullable=False),
    Column("entity", String(30), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("action", String(20), nullable=False),
    Column("actor_id", BigInteger),
    Column("on_behalf_of", BigInteger),
    Column("at", UtcDateTime, nullable=False),
    Column("changes", JSON, nullable=False),
    Column("comment", Text),
)

DEAL_FIELDS = (
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "owner",
    "version",
    "title",
    "account",
    "account_tier",
    "stage",
    "amount",
    "probability",
    "weighted_amount",
    "expected_close",
    "lost_reason",
    "discount_pct",
)
AUDITED = (*DEAL_FIELDS[7:], "approval_state")


class Refused(Exception):
    """Not allowed, not found or invalid input."""


# --- JSON ------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _line_json(row) -> dict:
    return {
        "id": row.id,
        "product": row.product,
        "quantity": row.quantity,
        "unit_price": _json(row.unit_price),
        "line_total": _json(row.line_total),
    }


def _deal_json(row, lines: list[dict]) -> dict:
    item = {name: _json(row[name]) for name in DEAL_FIELDS}
    item["lines"] = lines
    item["approval_state"] = row["approval_state"]
    return item


# --- the service -------------------------------------------------------------------


class StaticDeals:
    def __init__(self, engine: Engine):
        self.engine = engine

    @staticmethod
    def _require(actor, verb: str) -> None:
        if actor.is_admin:
            return
        if not any(verb in PERMISSIONS.get(role, ()) for role in actor.roles):
            raise Refused(f"you may not {verb} deals")

    @staticmethod
    def _lines(conn, ids: list[int]) -> dict[int, list[dict]]:
        by_parent: dict[int, list[dict]] = {i: [] for i in ids}
        if ids:
            rows = conn.execute(
                select(deal_line)
                .where(deal_line.c.parent_id.in_(ids))
                .order_by(deal_line.c.parent_id, deal_line.c.row_order)
            )
            for row in rows:
                by_parent[row.parent_id].append(_line_json(row))
        return by_parent

    def list_deals(self, actor, stage: str, page: int = 1, per_page: int = 50) -> dict:
        self._require(actor, "read")
        where = (deal.c.deleted_at.is_(None), deal.c.stage == stage)
        with self.engine.connect() as conn, conn.begin():
            capped = select(deal.c.id).where(*where).limit(COUNT_CAP + 1).subquery()
            found = conn.execute(select(func.count()).select_from(capped)).scalar_one()
            rows = (
                conn.execute(
                    select(deal)
                    .where(*where)
                    .order_by(deal.c.amount.desc(), deal.c.id.desc())
                    .offset((page - 1) * per_page)
                    .limit(per_page)
                )
                .mappings()
                .all()
            )
            lines = self._lines(conn, [row["id"] for row in rows])
            items = [_deal_json(row, lines[row["id"]]) for row in rows]
        estimate = found > COUNT_CAP
        return {
            "items": items,
            "total": found - 1 if estimate else found,
            "total_is_estimate": estimate,
            "page": page,
            "per_page": per_page,
        }

    @staticmethod
    def _load(conn, deal_id: int) -> dict:
        row = conn.execute(select(deal).where(deal.c.id == deal_id)).mappings().first()
        if row is None or row["deleted_at"] is not None:
            raise Refused(f"there is no deal with id {deal_id}")
        return _deal_json(row, StaticDeals._lines(conn, [deal_id])[deal_id])

    def get_deal(self, actor, deal_id: int) -> dict:
        with self.engine.connect() as conn, conn.begin():
            record = self._load(conn, deal_id)
            self._require(actor, "read")
            return record

    def create_deal(self, actor, data: dict, rollup: str = "sql") -> dict:
        self._require(actor, "create")
        values, lines = _validated(data)
        now = dt.datetime.now(UTC)
        with self.engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                tier = conn.execute(
                    select(account.c.tier).where(
                        account.c.id == values["account"], account.c.deleted_at.is_(None)
                    )
                ).first()
                if tier is None:
                    raise Refused(f"there is no account with id {values['account']}")
                stamps = dict(
                    created_at=now,
                    updated_at=now,
                    created_by=actor.id,
                    updated_by=actor.id,
                    owner=actor.id,
                    version=1,
                )
                row = {**values, **stamps, "approval_state": "draft", "account_tier": tier[0]}
                amount, probability = row.get("amount"), row.get("probability")
                row["weighted_amount"] = (
                    None
                    if amount is None or probability is None
                    else (amount * probability / 100).quantize(CENT, ROUND_HALF_UP)
                )
                deal_id = conn.execute(insert(deal).values(row).returning(deal.c.id)).scalar_one()
                if lines:
                    conn.execute(
                        insert(deal_line),
                        [
                            {**line, **stamps, "parent_id": deal_id, "row_order": order}
                            for order, line in enumerate(lines)
                        ],
                    )
                changes = {
                    name: [None, _json(row.get(name))]
                    for name in AUDITED
                    if row.get(name) is not None
                }
                if lines:
                    changes["lines"] = [[], [{k: _json(v) for k, v in ln.items()} for ln in lines]]
                conn.execute(
                    insert(audit).values(
                        app="sales_pipeline",
                        entity="deal",
                        record_id=deal_id,
                        action="create",
                        actor_id=actor.id,
                        at=now,
                        changes=changes,
                    )
                )
                _refresh_open_deal_value(conn, values["account"], rollup)
                return self._load(conn, deal_id)


def _refresh_open_deal_value(conn, account_id: int, rollup: str) -> None:
    live = (deal.c.account == account_id, deal.c.deleted_at.is_(None))
    if rollup == "sql":
        total = conn.execute(
            select(func.coalesce(func.sum(deal.c.amount), 0)).where(
                *live, or_(deal.c.stage.is_(None), deal.c.stage.not_in(CLOSED))
            )
        ).scalar_one()
        total = Decimal(total).quantize(CENT) if not isinstance(total, Decimal) else total
    else:
        rows = conn.execute(select(deal.c.amount, deal.c.stage).where(*live))
        total = sum((a for a, s in rows if a is not None and s not in CLOSED), Decimal(0)).quantize(
            CENT
        )
    current = conn.execute(
        select(account.c.open_deal_value).where(account.c.id == account_id)
    ).scalar()
    if current != total:
        conn.execute(
            update(account).where(account.c.id == account_id).values(open_deal_value=total)
        )


# --- validation -------------------------------------------------------------------


def _decimal(value: Any, name: str, low=None, high=None) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Refused(f"{name}: must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Refused(f"{name}: must be a number") from None
    if not number.is_finite() or number != number.quantize(CENT):
        raise Refused(f"{name}: at most 2 decimal places")
    if (low is not None and number < low) or (high is not None and number > high):
        raise Refused(f"{name}: out of range")
    return number.quantize(CENT)


def _validated(data: dict) -> tuple[dict, list[dict]]:
    if not isinstance(data, dict):
        raise Refused("must be an object")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 255:
        raise Refused("title: is required")
    account_id = data.get("account")
    if not isinstance(account_id, int) or isinstance(account_id, bool) or account_id <= 0:
        raise Refused("account: is required")
    stage = data.get("stage") or "lead"
    if stage not in STAGES:
        raise Refused("stage: not an option")
    close = data.get("expected_close")
    if close is not None:
        close = dt.date.fromisoformat(close) if isinstance(close, str) else close
    discount = _decimal(data.get("discount_pct", 0), "discount_pct", 0, 100)
    values = {
        "title": title,
        "account": account_id,
        "stage": stage,
        "amount": _decimal(data.get("amount"), "amount", 0),
        "probability": _decimal(data.get("probability"), "probability", 0, 100),
        "expected_close": close,
        "lost_reason": data.get("lost_reason"),
        "discount_pct": Decimal(0).quantize(CENT) if discount is None else discount,
    }
    lines = []
    for raw in data.get("lines") or []:
        product = raw.get("product")
        if not isinstance(product, str) or not product.strip():
            raise Refused("lines: product is required")
        quantity = raw.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise Refused("lines: quantity must be a whole number from 1")
        price = _decimal(raw.get("unit_price"), "unit_price")
        total = None if price is None else (quantity * price).quantize(CENT, ROUND_HALF_UP)
        lines.append(
            {"product": product, "quantity": quantity, "unit_price": price, "line_total": total}
        )
    return values, lines
