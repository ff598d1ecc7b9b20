"""Firing the discount approval and approving it send a fixed, small number of statements.

The engine reads an approval's tasks once per call, writes its tasks, notifications
and seats in one statement each, and knows the names it has read: so the count
does not grow with the number of approvers. The bounds pin today's counts (the
record service's share included: the deal is read once, locked, and moved without
being read again; its state is no input of its computed fields nor of its
account's rollup, so neither is computed again); a change that adds a query per
task, or reads the same rows again, fails here.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, select

from app.accounts import create_user
from metamodel.system_tables import approval_tasks

from .conftest import APP, FAST_HASH

# Statements per call with the example's people: two sales managers, and the
# account's manager copied. SQLite's BEGIN IMMEDIATE is not counted.
FIRE_AT_MOST = 15
APPROVE_AT_MOST = 13
DEAL = '"sales_pipeline__deal"'
ACCOUNT = '"sales_pipeline__account"'


@contextmanager
def counted(engine):
    """The statements ``engine`` sends inside the block (transaction control left out)."""
    sent: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def fire_and_approve(engine, flow, people, deal) -> tuple[list[str], list[str], dict]:
    with counted(engine) as fired:
        outcome = flow.fire(people["li"], APP, "deal", deal, "request_discount")
    task = next(
        t["id"] for t in outcome["approval"]["steps"][0]["tasks"] if t["assignee"] == "wang"
    )
    with counted(engine) as approved:
        done = flow.act(people["wang"], task, "approve")
    assert done["state"] == "approved"
    return fired, approved, outcome


def on(statements: list[str], table: str) -> int:
    """How many of ``statements`` read or write ``table`` itself (not in a subquery)."""
    starts = (f"SELECT {table}.", f"INSERT INTO {table} ", f"UPDATE {table} ")
    return sum(1 for s in statements if s.lstrip().startswith(starts))


def test_fire_and_approve_stay_within_their_statement_budget(engine, flow, people, make_deal):
    fired, approved, _ = fire_and_approve(engine, flow, people, make_deal(10))
    assert len(fired) <= FIRE_AT_MOST, "\n".join(fired)
    assert len(approved) <= APPROVE_AT_MOST, "\n".join(approved)
    # The tasks: one insert and one seat update when opening; one read, the decision and
    # the closing of the other seat when deciding.
    assert on(fired, "crm_approval_tasks") == 2, "\n".join(fired)
    assert on(approved, "crm_approval_tasks") == 3, "\n".join(approved)
    assert on(fired, "crm_notifications") == 1
    assert on(approved, "crm_notifications") == 1
    # The deal: read (locked) once and written once; its lines and its account's
    # tier are not read for the move, nor its account refreshed.
    for sent in (fired, approved):
        assert on(sent, DEAL) == 2, "\n".join(sent)
        assert on(sent, '"sales_pipeline__deal_line"') == 1, "\n".join(sent)  # the answer
    # The account is read once when firing: its manager is copied. Never its rollup.
    assert on(fired, ACCOUNT) == 1, "\n".join(fired)
    assert on(approved, ACCOUNT) == 0, "\n".join(approved)
    assert not [s for s in fired + approved if "sum(" in s.lower()]


def test_more_approvers_send_no_more_statements(engine, flow, people, make_deal):
    two = fire_and_approve(engine, flow, people, make_deal(10))
    with engine.begin() as conn:
        for n in range(4):
            create_user(conn, f"manager{n}", ["sales_manager"], password="pw", method=FAST_HASH)
    fired, approved, outcome = fire_and_approve(engine, flow, people, make_deal(10))
    assert (len(fired), len(approved)) == (len(two[0]), len(two[1]))

    # Six tasks and the copy went in with one statement: each has its own seat, and the
    # ids the engine answered with are the rows the database holds.
    shown = [(t["id"], t["assignee_id"]) for t in outcome["approval"]["steps"][0]["tasks"]]
    shown += [(t["id"], t["assignee_id"]) for t in outcome["approval"]["cc"]]
    assert len(shown) == 7
    with engine.connect() as conn:
        rows = conn.execute(
            select(approval_tasks.c.id, approval_tasks.c.assignee_id, approval_tasks.c.seat).where(
                approval_tasks.c.id.in_([i for i, _ in shown])
            )
        ).all()
    assert sorted((r.id, r.assignee_id) for r in rows) == sorted(shown)
    assert all(r.seat == r.id for r in rows)
