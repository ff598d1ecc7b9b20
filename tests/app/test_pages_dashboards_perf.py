"""Dashboards on big tables: a pareto widget shows (and its snapshot keeps) its largest groups,
the classes count all."""

from __future__ import annotations

from app.views import dashboards
from records import dashboard_snapshots as snapshots

from . import test_pages_dashboards as base
from .test_pages_dashboards import (
    chart_data,
    dashboard_page,
    rows_of,
    signed_in,
    widgets_of,
    words,
)

# The dashboard tests' app, people and deals.
web_app, actors, deals = base.web_app, base.actors, base.deals


def test_a_pareto_shows_its_largest_groups_and_counts_them_all(web_app, deals, monkeypatch):
    monkeypatch.setattr(dashboards, "PARETO_ROWS", 2)
    page = dashboard_page(signed_in(web_app, "root"), "sales_kpis")
    pareto = widgets_of(page)["Account value (ABC)"]
    assert rows_of(pareto, "pareto-table") == [
        ["1", "Bolt", "CN¥6,000.00", "60.0%", "60.0%", "A"],
        ["2", "Acme", "CN¥3,000.00", "30.0%", "90.0%", "A"],
    ]
    assert "The 2 largest of 3 groups; the classes below count them all." in words(pareto)
    data = chart_data(pareto)
    assert data["labels"] == ["Bolt", "Acme"] and data["cumulative"] == [60.0, 90.0]
    # The total and the classes are over every group, shown or not.
    assert "CN¥10,000.00" in words(pareto)
    assert "B 1 group · CN¥1,000.00 · 10.0%" in words(pareto)


def test_a_pareto_with_few_groups_shows_them_all_without_a_note(web_app, deals):
    pareto = widgets_of(dashboard_page(signed_in(web_app, "root"), "sales_kpis"))[
        "Account value (ABC)"
    ]
    assert len(rows_of(pareto, "pareto-table")) == 3
    assert "largest of" not in pareto


def test_a_snapshot_keeps_the_largest_groups_and_the_page_counts_them_all(
    web_app, deals, monkeypatch
):
    monkeypatch.setattr(snapshots, "KEPT_GROUPS", 2)
    page = dashboard_page(signed_in(web_app, "root"), "sales_kpis")
    pareto = widgets_of(page)["Account value (ABC)"]
    assert [row[1] for row in rows_of(pareto, "pareto-table")] == ["Bolt", "Acme"]
    assert "The 2 largest of 3 groups; the classes below count them all." in words(pareto)
    assert "B 1 group · CN¥1,000.00 · 10.0%" in words(pareto)
