"""Signing in and out, the language switch and the security headers, in Chromium."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import screenshot, sign_in


def test_sign_in_shows_the_apps_and_sign_out_ends_the_session(page, live_server):
    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/sign-in?next=%2F")
    screenshot(page, "sign-in")
    sign_in(page, live_server.url, "li")
    expect(page.locator("aside.sidebar")).to_contain_text("Sales pipeline")
    expect(page.locator("aside.sidebar")).to_contain_text("Deal")
    screenshot(page, "home")
    page.click("#sign-out")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.goto(live_server.url + "/")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert page.console.errors == []


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(page, live_server):
    page.goto(live_server.url + "/sign-in")
    page.fill("#username", "li")
    page.fill("#password", "not it")
    page.click("button[type=submit].primary")
    expect(page.locator("#sign-in-error")).to_have_text("Wrong username or password.")


def test_switching_to_chinese_translates_the_interface_and_the_labels(page, live_server):
    sign_in(page, live_server.url, "li")
    page.click("button[name=language][value=zh]")
    expect(page.locator("#sign-out")).to_have_text("退出登录")
    # The example's labels are Texts with a Chinese version.
    expect(page.locator("aside.sidebar")).to_contain_text("销售")
    screenshot(page, "home-zh")
    page.reload()
    expect(page.locator("#sign-out")).to_have_text("退出登录")
    assert page.console.errors == []
