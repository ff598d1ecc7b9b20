"""The admin imports the retail membership preset with its sample data, then opens a list.

Through the pages as a user would: the Presets link, the preset's card, the plan
(a dry run that changes nothing), the confirmation, then the new app's members.
"""

from __future__ import annotations

from playwright.sync_api import expect

from metamodel import store

from .conftest import screenshot, sign_in

APP = "retail_membership"


def test_the_admin_imports_a_preset_with_sample_data_and_opens_a_list(page, live_server, web_app):
    engine = web_app.extensions["crm"].engine
    base = live_server.url

    sign_in(page, base, "root")
    page.locator(".nav-extra a", has_text="Presets").click()
    expect(page.locator("h1")).to_have_text("Industry presets")
    card = page.locator(f"#preset-{APP}")
    expect(card.locator("h2")).to_have_text("Retail membership")
    expect(card.locator(".preset-entities")).to_contain_text("Members")
    expect(card.locator(".preset-workflows")).to_contain_text("Campaign approval")
    expect(card).to_contain_text("Not installed")
    screenshot(page, "admin-presets")

    card.get_by_label("With sample data").check()
    card.get_by_role("button", name="Import").click()
    expect(page.locator("h1")).to_have_text("Import Retail membership")
    operations = page.locator(".preset-operations .operations li")
    expect(operations.first).to_contain_text("create entity")
    members = page.get_by_role("cell", name="Members", exact=True)
    samples = page.locator(".preset-samples tbody tr").filter(has=members)
    expect(samples.locator("td.number")).to_have_text("10")
    screenshot(page, "admin-preset-plan")
    with engine.connect() as conn:
        assert store.current(conn, APP) is None  # the plan is a dry run

    page.get_by_role("button", name="Import Retail membership now").click()
    expect(page.locator(".flash")).to_contain_text("Imported Retail membership 1.0.0.")
    expect(page.locator(".flash")).to_contain_text("sample records were created")
    card = page.locator(f"#preset-{APP}")
    expect(card).to_contain_text("Installed: version 1.0.0")
    expect(card.get_by_role("button", name="Upgrade")).to_be_visible()

    card.locator(".preset-lists").get_by_role("link", name="Members", exact=True).click()
    expect(page).to_have_url(f"{base}/a/{APP}/member")
    expect(page.locator("table.data tbody tr")).to_have_count(10)
    assert page.console.errors == []
