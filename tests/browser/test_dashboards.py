"""A preset's dashboard in Chromium: the b2b_sales sample data drawn with Chart.js under the CSP.

The page first shows placeholders (no snapshot yet) and asks for the widgets
itself; the charts are drawn once they are swapped in, and again after Refresh.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from metamodel import publish
from presets.catalog import import_sample_data, load_preset
from records.actor import SYSTEM
from records.service import Records

from .conftest import screenshot, sign_in

APP = "b2b_sales"
BOARD = "sales_overview"

# How many pixels of a canvas are painted (not transparent): a drawn chart has many.
PAINTED = """canvas => {
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  return painted;
}"""


def test_the_b2b_sales_dashboard_draws_every_chart(page, live_server, web_app):
    engine = web_app.extensions["crm"].engine
    doc = load_preset(APP)
    publish.apply_document(engine, doc)
    records = Records(engine)
    import_sample_data(records, SYSTEM, doc)

    sign_in(page, live_server.url, "root")
    # The first page has no snapshots: it shows placeholders and asks for the widgets.
    with page.expect_response(lambda r: r.url.endswith(f"/{BOARD}/refresh")) as asked:
        page.get_by_role("link", name="Sales overview").click()
    assert asked.value.status == 200
    expect(page).to_have_url(f"{live_server.url}/a/{APP}/dashboards/{BOARD}")
    expect(page.locator("h1")).to_have_text("Sales overview")
    numbers = page.locator(".widget-number .big-number")
    expect(numbers).to_have_count(4)
    expect(page.locator("#widget-1 .big-number")).to_have_text("CN¥7,450,000.00")
    expect(page.locator(".widget-computing")).to_have_count(0)
    expect(page.locator(".dashboard-status .as-of")).to_have_text(re.compile(r"^As of \d\d:\d\d$"))
    expect(page.locator(".auto-refresh")).to_have_count(0)
    assert_charts_drawn(page)

    # The data under a chart opens as a table; the pareto's table is always there.
    table = page.locator("#widget-5 details")
    table.locator("summary").click()
    expect(table.locator("tbody tr").first).to_contain_text("CN¥1,200,000.00")
    pareto = page.locator(".widget-pareto .pareto-table tbody tr")
    expect(pareto).to_have_count(4)
    expect(pareto.first.locator(".chip.abc")).to_have_text("A")
    expect(pareto.last.locator(".chip.abc")).to_have_text("C")
    screenshot(page, "dashboard-b2b-sales")

    # A new opportunity shows after Refresh, not before: the page shows its snapshot.
    account = records.list(SYSTEM, APP, "account")["items"][0]["id"]
    values = {"title": "New lead", "account": account, "stage": "lead", "amount": "1000.00"}
    records.create(SYSTEM, APP, "opportunity", values)
    page.reload()
    expect(page.locator("#widget-1 .big-number")).to_have_text("CN¥7,450,000.00")
    expect(page.locator(".auto-refresh")).to_have_count(0)
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#widget-1 .big-number")).to_have_text("CN¥7,451,000.00")
    assert_charts_drawn(page)
    assert page.console.errors == []


def assert_charts_drawn(page) -> None:
    """Five charts and the pareto, each a Chart.js chart painted on its canvas."""
    canvases = page.locator("canvas[data-chart]")
    expect(canvases).to_have_count(6)
    expect(page.locator("canvas[data-chart-ready]")).to_have_count(6)
    assert page.evaluate("document.querySelectorAll('canvas').length") == 6
    kinds = page.evaluate(
        "[...document.querySelectorAll('canvas')].map(c => Chart.getChart(c).config.type)"
    )
    assert kinds == ["bar", "bar", "line", "pie", "bar", "bar"]  # the funnel is a bar chart
    page.wait_for_timeout(600)  # the animations end
    for index in range(6):
        assert canvases.nth(index).evaluate(PAINTED) > 500, f"canvas {index} is blank"
    funnel = page.evaluate(
        "(() => { const c = Chart.getChart(document.querySelector('#widget-5 canvas'));"
        " return [c.options.indexAxis, c.data.labels[0], c.data.datasets[0].backgroundColor[0]];"
        " })()"
    )
    assert funnel == ["y", "Lead", "#95a5a6"]
