"""The order ticket in a real browser: live preview, submit, the order followed to its fill."""

from __future__ import annotations

import json
import re

import redis
from playwright.sync_api import Route, expect

from tests.dashboard.support import Watched, screenshot, sign_in, sql
from tests.e2e.support import Runtime

FACTORS = ("Speed", "Price", "Reliability", "Liquidity", "Cost")
PAPER = ("angelone", "dhan", "fyers", "upstox", "zerodha")


def test_preview_then_submit_then_the_live_fill(watched: Watched, runtime: Runtime) -> None:
    # GIVEN a trader signed in with the keyboard
    page = watched.page
    sign_in(page, "trader-ticket")
    expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")

    # WHEN the default ticket (100 RELIANCE) is previewed
    preview = page.get_by_test_id("preview")
    scores = page.get_by_test_id("scores")
    # THEN every broker is scored on its five factors, with split, price, charges and confidence
    for broker in PAPER:
        expect(scores.get_by_role("rowheader", name=broker, exact=True)).to_have_count(1)
    for factor in FACTORS:
        expect(scores.get_by_role("columnheader", name=factor)).to_be_visible()
    expect(page.get_by_test_id("split").locator("tbody tr").first).to_contain_text("100")
    expect(page.get_by_test_id("expected-price")).to_have_text(re.compile(r"₹1,2\d\d\.\d\d"))
    expect(page.get_by_test_id("confidence")).to_have_text(re.compile(r"\d+%"))
    expect(page.get_by_test_id("charges")).to_contain_text("STT")
    # (the simulated real brokers are excluded until the trader links an account: each says so)
    for item in page.get_by_test_id("excluded").locator("li").all():
        expect(item).to_contain_text(":")

    # WHEN the trader types another quantity
    with page.expect_request(re.compile(r"/orders/analyze$")) as analyzed:
        page.get_by_label("Quantity").fill("250")
    # THEN the preview is asked again for that quantity and shows it
    assert json.loads(analyzed.value.post_data or "{}")["quantity"] == 250
    expect(page.get_by_test_id("split").locator("tbody")).to_contain_text("250")
    expect(preview).to_have_attribute("aria-busy", "false")
    screenshot(page, "ticket")

    # WHEN it is submitted
    page.get_by_role("button", name="Submit BUY").click()
    # THEN the order is followed live: routed, each child's fill, completion
    followed = page.get_by_test_id("followed")
    expect(followed).to_be_visible()
    events = page.get_by_test_id("events")
    expect(events.locator('[data-type="ROUTING_UPDATE"]')).to_have_count(1)
    expect(events.locator('[data-type="EXECUTION_UPDATE"]').first).to_contain_text("FILLED")
    expect(page.get_by_test_id("order-complete")).to_be_visible()
    children = page.get_by_test_id("children").locator("tbody tr")
    assert children.count() >= 1
    for index in range(children.count()):
        expect(children.nth(index)).to_have_attribute("data-status", "FILLED")
    screenshot(page, "ticket-followed")
    watched.assert_clean()


def test_excluded_brokers_show_their_reason(watched: Watched, runtime: Runtime) -> None:
    # GIVEN angelone in maintenance for TCS (Postgres, and its cached profile dropped)
    sql(
        runtime,
        "UPDATE broker_execution_profiles SET status = 'MAINTENANCE' "
        "WHERE broker_id = 'angelone' AND symbol = 'TCS'",
    )
    client = redis.Redis(host="127.0.0.1", port=runtime.redis_port)
    client.delete("profile:angelone:TCS")
    client.close()
    page = watched.page
    sign_in(page, "trader-excluded")
    # WHEN the trader previews a TCS order
    page.get_by_label("Symbol").fill("TCS")
    # THEN angelone is listed as excluded, with the reason, and not among the scored
    expect(page.get_by_test_id("excluded")).to_contain_text("angelone: broker is MAINTENANCE")
    scores = page.get_by_test_id("scores")
    expect(scores.get_by_role("rowheader", name="angelone", exact=True)).to_have_count(0)
    expect(scores.get_by_role("rowheader", name="zerodha", exact=True)).to_have_count(1)
    watched.assert_clean()


def test_a_refused_order_is_explained_next_to_the_field(watched: Watched) -> None:
    # GIVEN a signed-in trader
    page = watched.page
    sign_in(page, "trader-422")
    expect(page.get_by_test_id("preview")).to_be_visible()
    # WHEN the quantity breaks the pre-trade limit (100,000 shares)
    with page.expect_response(
        lambda r: r.url.endswith("/orders/analyze") and "5000000" in (r.request.post_data or "")
    ) as answered:
        page.get_by_label("Quantity").fill("5000000")
    # THEN the API's 422 is shown as an alert saying what was refused, and no stale preview
    assert answered.value.status == 422
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("HTTP 422")
    expect(alert).to_contain_text("Refused")
    expect(page.get_by_test_id("preview")).to_have_count(0)
    watched.assert_clean(allow_statuses=(422,))


def test_503_and_403_are_shown(watched: Watched) -> None:
    # GIVEN the analyze route answering 503 (a dependency down), as the API does
    page = watched.page

    def unavailable(route: Route) -> None:
        route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps({"error": {"code": "DATA_UNAVAILABLE", "message": "redis is down"}}),
        )

    page.route(re.compile(r"/orders/analyze$"), unavailable)
    sign_in(page, "trader-503")
    # THEN the ticket says the service is unavailable and to retry
    expect(page.get_by_role("alert")).to_contain_text("unavailable right now")
    page.unroute(re.compile(r"/orders/analyze$"))

    # GIVEN a user with the ADMIN group only (no TRADER)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "operator-only", groups=("ADMIN",))
    # THEN the trader routes answer 403 and the ticket says the account lacks the group
    expect(page.get_by_role("alert")).to_contain_text("HTTP 403")
    expect(page.get_by_role("alert")).to_contain_text("lacks the group")
    watched.assert_clean(allow_statuses=(503, 403))


def test_an_expired_session_returns_to_sign_in(watched: Watched, runtime: Runtime) -> None:
    # GIVEN a session whose token the API refuses (signed with another secret)
    page = watched.page
    page.goto("/")
    forged = runtime.token("trader-401")[:-4] + "AAAA"
    page.evaluate("(t) => sessionStorage.setItem('order-router.token', t)", forged)
    # WHEN the dashboard loads and calls the API
    page.reload()
    # THEN the 401 sends the trader back to sign in, saying why
    expect(page.get_by_role("alert")).to_contain_text("Sign in again")
    expect(page.get_by_label("User id")).to_be_visible()
    watched.assert_clean(allow_websocket_refused=True, allow_statuses=(401,))
