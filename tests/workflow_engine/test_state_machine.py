"""Random users doing random things to a deal under approval; the invariants always hold.

- a record never sits in ``to`` with an approval still open;
- a record never has two open approvals;
- only entitled people approve: the task's assignee or an admin, and a task
  goes only to someone its step names (or their delegate, or an escalation admin);
- an approved approval passed every step it entered, by that step's mode.
"""

from __future__ import annotations

from contextlib import suppress

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from metamodel.errors import NotFound
from metamodel.system_tables import approval_tasks, approvals
from records.errors import Forbidden, RecordConflict, ValidationFailed

from .conftest import APP

NAMES = ["admin", "boss", "wang", "li", "zhao", "chen", "qian"]
ACTIONS = ["approve", "approve", "reject", "send_back", "transfer", "add_approver", "comment"]
REFUSED = (Forbidden, RecordConflict, ValidationFailed, NotFound)
PAYLOADS = {
    "approve": {},
    "reject": {"comment": "no"},
    "send_back": {"to": "previous"},
    "transfer": {"to": "admin"},
    "add_approver": {"users": ["qian"]},
    "comment": {"comment": "why?"},
}
STEP_ROLES = {"manager": "sales_manager", "finance": "finance"}


def machine_for(flow, records, people, clock, account):
    engine = records.engine
    admins = {people["admin"].id}
    roles = {actor.id: actor.roles for actor in people.values()}
    by_id = {actor.id: actor for actor in people.values()}

    class Approvals(RuleBasedStateMachine):
        @initialize(discount=st.sampled_from([10, 20]))
        def submit(self, discount):
            self.deal = records.create(
                people["li"],
                APP,
                "deal",
                {"title": "Random", "account": account["id"], "discount_pct": discount},
            )["id"]
            flow.fire(people["li"], APP, "deal", self.deal, "request_discount")

        def rows(self, table, *conditions):
            with engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(select(table).where(*conditions))]

        def approvals(self) -> list[dict]:
            return self.rows(approvals, approvals.c.record_id == self.deal)

        def tasks(self) -> list[dict]:
            ids = [a["id"] for a in self.approvals()]
            found = self.rows(approval_tasks, approval_tasks.c.approval_id.in_(ids))
            return sorted(found, key=lambda t: t["id"])

        def attempt(self, actor, task, action, payload):
            may = task["assignee_id"] == actor.id or actor.is_admin
            try:
                flow.act(actor, task["id"], action, payload)
            except Forbidden:
                assert not may
                return
            except REFUSED:
                return
            assert may and task["status"] == "open"

        @rule(
            user=st.sampled_from(["li"] * 3 + NAMES),
            transition=st.sampled_from(["request_discount", "reopen"]),
        )
        def fire(self, user, transition):
            with suppress(*REFUSED):
                flow.fire(people[user], APP, "deal", self.deal, transition)

        @rule(pick=st.integers(0, 30), action=st.sampled_from(["approve"] * 4 + ACTIONS))
        def assignee_acts(self, pick, action):
            live = [t for t in self.tasks() if t["kind"] == "approve" and t["status"] == "open"]
            if live:
                task = live[pick % len(live)]
                self.attempt(by_id[task["assignee_id"]], task, action, PAYLOADS[action])

        @rule(
            user=st.sampled_from(NAMES),
            action=st.sampled_from(ACTIONS),
            pick=st.integers(0, 30),
            other=st.sampled_from(NAMES),
            back_to=st.sampled_from(["previous", "start"]),
        )
        def anyone_acts(self, user, action, pick, other, back_to):
            every = [t for t in self.tasks() if t["kind"] == "approve"]
            if not every:
                return
            payload = {
                "send_back": {"to": back_to},
                "transfer": {"to": other},
                "add_approver": {"users": [other]},
                "comment": {"comment": "why?"},
            }.get(action, {})
            self.attempt(people[user], every[pick % len(every)], action, payload)

        @rule(user=st.sampled_from(NAMES))
        def withdraw(self, user):
            with suppress(*REFUSED):
                flow.withdraw(people[user], APP, "deal", self.deal)

        @rule(user=st.sampled_from(["li", "wang", "admin"]), discount=st.sampled_from([5, 10, 30]))
        def edit(self, user, discount):
            with suppress(*REFUSED):
                records.update(people[user], APP, "deal", self.deal, {"discount_pct": discount})

        @rule(hours=st.sampled_from([1, 30]))
        def tick(self, hours):
            flow.tick(clock.advance(hours=hours))

        @invariant()
        def one_open_approval_at_most(self):
            with engine.connect() as conn:
                doubled = conn.execute(
                    select(approvals.c.record_id)
                    .where(approvals.c.status == "open")
                    .group_by(approvals.c.app, approvals.c.entity, approvals.c.record_id)
                    .having(func.count() > 1)
                ).all()
            assert doubled == []

        @invariant()
        def state_agrees_with_the_approval(self):
            state = records.get(people["admin"], APP, "deal", self.deal)["approval_state"]
            opened = [a for a in self.approvals() if a["status"] == "open"]
            if state == "approved":
                assert opened == []
            if opened:
                assert state == "pending"

        @invariant()
        def only_entitled_people_approve(self):
            for task in self.tasks():
                if task["kind"] != "approve":
                    continue
                if task["status"] in ("approved", "rejected", "sent_back", "transferred"):
                    assert task["acted_by"] in (task["assignee_id"], *admins)
                if task["source"] == "escalated":
                    assert task["assignee_id"] in admins
                elif task["source"] == "assigned":
                    role = STEP_ROLES[task["step_name"]]
                    named = task["on_behalf_of"] or task["assignee_id"]
                    assert role in roles[named]

        @invariant()
        def approved_means_every_step_passed(self):
            every = self.tasks()
            for approval in self.approvals():
                if approval["status"] != "approved":
                    continue
                mine = [t for t in every if t["approval_id"] == approval["id"]]
                for step in ("manager", "finance"):
                    ran = [t for t in mine if t["step_name"] == step]
                    if not ran:
                        assert step == "finance"
                        continue
                    last = [t for t in ran if t["round"] == max(t["round"] for t in ran)]
                    approved = {t["seat"] for t in last if t["status"] == "approved"}
                    escalated = [t for t in last if t["source"] == "escalated"]
                    seats = {t["seat"] for t in last if t["source"] != "escalated"}
                    if any(t["status"] == "approved" for t in escalated):
                        continue
                    assert approved >= (seats if step == "finance" else set()) and approved

    return Approvals


def test_random_users_never_break_the_invariants(flow, records, people, clock, account):
    machine = machine_for(flow, records, people, clock, account)
    run_state_machine_as_test(
        machine, settings=settings(max_examples=12, stateful_step_count=15, deadline=None)
    )
