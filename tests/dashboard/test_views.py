"""Blotter, brokers, analytics and operator views in a real browser, and their accessibility."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from shared.domain.contracts import ApiPath
from tests.dashboard.support import Watched, canvas_has_drawing, screenshot, sign_in
from tests.e2e.support import Runtime

USER = "trader-views"


def _place_orders(runtime: Runtime, page: Page, count: int) -> list[str]:
    # Through the dashboard's own ticket, so the blotter knows them even without GET /orders.
    ids = []
    page.goto("/#/ticket")
    for _ in range(count):
        expect(page.get_by_test_id("preview")).to_be_visible()
        with page.expect_response(re.compile(r"/orders/smart$")) as placed:
            page.get_by_role("button", name="Submit BUY").click()
        ids.append(placed.value.json()["orderId"])
        expect(page.get_by_test_id("order-complete")).to_be_visible()
    return ids


def test_blotter_lists_the_orders_with_fills_and_costs(watched: Watched, runtime: Runtime) -> None:
    # GIVEN two orders the trader placed and that filled
    page = watched.page
    sign_in(page, USER)
    ids = _place_orders(runtime, page, 2)
    # WHEN the blotter opens
    page.get_by_role("link", name="Blotter").click()
    # THEN each order is a row with its fill, average price, arrival and costs
    table = page.get_by_test_id("blotter")
    for order_id in ids:
        row = table.locator(f'tr[data-order="{order_id}"]')
        expect(row).to_contain_text("RELIANCE")
        expect(row.get_by_test_id("filled")).to_have_text("100")
        expect(row).to_contain_text("₹1,2")
        expect(row).to_contain_text("bps")
    # and, while GET /orders is not served, a notice says where the rows come from
    history = httpx.get(
        f"{runtime.api}{ApiPath.SMART_ORDER.replace('/smart', '')}", headers=runtime.auth(USER)
    )
    if history.status_code == 404:
        expect(page.get_by_test_id("unavailable")).to_contain_text("GET /orders")
    screenshot(page, "blotter")
    watched.assert_clean()


def test_analytics_draws_its_charts_from_data(watched: Watched, runtime: Runtime) -> None:
    # GIVEN a trader with a filled order
    page = watched.page
    sign_in(page, "trader-analytics")
    _place_orders(runtime, page, 1)
    # WHEN the analytics view opens
    page.get_by_role("link", name="Analytics").click()
    # THEN the per-broker and per-strategy tables have rows and the charts have been drawn
    expect(page.get_by_test_id("by-broker").locator("tbody tr")).not_to_have_count(0)
    expect(page.get_by_test_id("by-strategy").locator("tbody tr")).to_contain_text("SMART_BALANCE")
    for chart in ("chart-latency", "chart-quality", "chart-fill"):
        expect(page.get_by_test_id(chart)).to_be_visible()
        page.wait_for_function(
            '(id) => document.querySelector(`[data-testid="${id}"]`).width > 0', arg=chart
        )
        assert canvas_has_drawing(page, chart), chart
    screenshot(page, "analytics")
    # WHEN another window is chosen
    with page.expect_request(re.compile(r"/analytics/execution\?days=7$")):
        page.get_by_label("Window").select_option("7")
    # THEN it is asked for and shown
    expect(page.get_by_test_id("summary")).to_contain_text("Orders")
    watched.assert_clean()


def test_brokers_show_profiles_status_share_and_charts(watched: Watched, runtime: Runtime) -> None:
    # GIVEN a trader who routed an order (so some broker has a share of flow)
    page = watched.page
    sign_in(page, "trader-brokers")
    _place_orders(runtime, page, 1)
    # WHEN the brokers view opens
    page.get_by_role("link", name="Brokers").click()
    # THEN each broker's learned profile has its samples, uncertainty, status and share of flow
    rows = page.get_by_test_id("profiles").locator("tbody tr")
    for broker in ("angelone", "dhan", "fyers", "upstox", "zerodha"):
        expect(rows.filter(has_text=broker).first).to_contain_text("±")
    expect(page.get_by_test_id("profiles")).to_contain_text("100.0%")
    for chart in ("chart-profile-latency", "chart-profile-rates"):
        page.wait_for_function(
            '(id) => document.querySelector(`[data-testid="${id}"]`).width > 0', arg=chart
        )
        assert canvas_has_drawing(page, chart), chart
    screenshot(page, "brokers")
    # WHEN another symbol is chosen, THEN its profiles are asked for
    with page.expect_request(re.compile(r"/brokers/profiles\?symbol=TCS$")):
        page.get_by_label("Symbol").select_option("TCS")
    expect(page.get_by_test_id("profiles")).to_contain_text("Learned profiles for TCS")
    watched.assert_clean()


def test_operator_view_needs_admin_and_shows_what_is_served(
    watched: Watched, runtime: Runtime
) -> None:
    # GIVEN a trader without the ADMIN group
    page = watched.page
    sign_in(page, "trader-not-admin")
    page.get_by_role("link", name="Operator").click()
    # THEN the operator view says it needs ADMIN
    expect(page.get_by_test_id("needs-admin")).to_contain_text("needs the ADMIN group")

    # GIVEN an operator (TRADER and ADMIN)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "operator-1", groups=("TRADER", "ADMIN"))
    page.goto("/#/operator")
    # THEN the health summary is shown, and each admin panel shows its data or "not available"
    expect(page.get_by_test_id("health")).to_contain_text("healthy")
    admin = httpx.get(f"{runtime.api}/api/v1/admin/brokers", headers=runtime.auth("operator-1"))
    if admin.status_code == 404:
        expect(page.get_by_test_id("unavailable")).to_have_count(3)
        watched.assert_clean()
        return
    # AND the alarm summary lists the stack's alarms
    expect(page.get_by_test_id("alarms").locator("tbody tr")).to_have_count(9)
    # WHEN the operator puts a broker into maintenance with a reason
    row = page.get_by_test_id("admin-brokers").locator('tr[data-broker="fyers"]')
    row.get_by_label("Status", exact=True).select_option("MAINTENANCE")
    row.get_by_label("Reason").fill("exchange link down")
    row.get_by_role("button", name="Apply").click()
    # THEN the table and the audit trail show it
    expect(row.get_by_test_id("broker-status")).to_have_text(
        "MAINTENANCE (exchange link down)", timeout=10_000
    )
    expect(page.get_by_role("region", name="Audit trail")).to_contain_text("exchange link down")
    # (operator.png is taken by test_operator.py, with an alarm firing)
    # and it is put back for the other tests
    row.get_by_label("Status", exact=True).select_option("ACTIVE")
    row.get_by_label("Reason").fill("link restored")
    row.get_by_role("button", name="Apply").click()
    expect(row.get_by_test_id("broker-status")).to_have_text(re.compile(r"^ACTIVE"))
    watched.assert_clean()


def test_every_control_is_labelled_and_reachable_by_keyboard(watched: Watched) -> None:
    # GIVEN a signed-in trader on each view
    page = watched.page
    sign_in(page, "trader-a11y")
    unlabelled_script = """() => [...document.querySelectorAll('input, select, button, canvas')]
        .filter((el) => {
            if (el.tagName === 'CANVAS') return !el.getAttribute('aria-label');
            const named = el.getAttribute('aria-label');
            if (el.tagName === 'BUTTON') return !el.textContent.trim() && !named;
            return !(el.labels && el.labels.length) && !named;
        })
        .map((el) => el.outerHTML.slice(0, 80))"""
    for view in ("ticket", "blotter", "brokers", "analytics", "operator"):
        page.goto(f"/#/{view}")
        page.wait_for_timeout(300)
        # THEN every control has a label (a chart has a text alternative)
        assert page.evaluate(unlabelled_script) == [], view
    # WHEN the trader moves with Tab from the skip link
    page.goto("/#/ticket")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    # THEN the view links are reachable and Enter opens one
    expect(page.get_by_role("link", name="Blotter")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Blotter")
    # and on a phone-sized screen nothing needs a horizontal scroll of the page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/#/ticket")
    expect(page.get_by_test_id("preview")).to_be_visible()
    too_wide = """() => [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((el) => !el.closest('.scroll'))
        .map((el) => `${el.tagName}.${el.className}`)"""
    assert page.evaluate(too_wide) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "ticket-phone")
    watched.assert_clean()
