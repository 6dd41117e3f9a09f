"""The operator view's alarm summary and live broker status, with an ADMIN-only operator.

A report that cannot be true (a child filled twice over) is quarantined by the webhook; its
``QuarantinedReports`` EMF line is tapped off local mode's stdout, and the alarm the stack would
raise in CloudWatch goes to ALARM in the operator view, evaluated from the same definition.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.sync_api import expect

from local import seed
from shared.adapters.brokers.webhooks import sign_webhook
from shared.domain.contracts import ADMIN_PREFIX, ApiPath
from tests.dashboard.support import Watched, screenshot, sign_in
from tests.e2e.support import API, Runtime

OPERATOR = "operator-alarms"
TRADER = "trader-alarms"
ORDER = {"symbol": "INFY", "side": "BUY", "quantity": 30, "orderType": "MARKET"}


def _filled_child(runtime: Runtime) -> dict[str, Any]:
    placed = httpx.post(
        f"{runtime.api}{API}/orders/smart", json=ORDER, headers=runtime.auth(TRADER), timeout=30
    )
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = httpx.get(
            f"{runtime.api}{API}/orders/{order_id}", headers=runtime.auth(TRADER), timeout=30
        ).json()
        filled = [c for c in view["childOrders"] if c["status"] == "FILLED"]
        if filled:
            return dict(filled[0])
        time.sleep(0.3)
    raise AssertionError(f"no child of {order_id} filled")


def _impossible_report(runtime: Runtime, child: dict[str, Any]) -> httpx.Response:
    # Twice the child's quantity filled: authentic (signed) but impossible.
    raw = json.dumps(
        {
            "brokerId": child["brokerId"],
            "brokerOrderId": child["brokerOrderId"],
            "childOrderId": child["childOrderId"],
            "status": "FILLED",
            "quantity": child["quantity"],
            "filledQuantity": child["quantity"] * 2,
            "averagePrice": f"{float(child['averagePrice']):.2f}",
            "symbol": ORDER["symbol"],
            "exchange": "NSE",
            "side": "BUY",
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()
    secret = seed.webhook_secrets()[f"{child['brokerId']}/webhook"]
    return httpx.post(
        f"{runtime.api}{ApiPath.SIGNED_WEBHOOK.format(brokerId=child['brokerId'])}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            **sign_webhook(raw, secret, timestamp=int(time.time())),
        },
        timeout=30,
    )


def _set_status(runtime: Runtime, broker_id: str, status: str, reason: str) -> None:
    answer = httpx.put(
        f"{runtime.api}{ADMIN_PREFIX}/brokers/{broker_id}/status",
        json={"status": status, "reason": reason},
        headers={"Authorization": f"Bearer {runtime.token(OPERATOR, groups=('ADMIN',))}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_an_impossible_report_fires_its_alarm_in_the_operator_view(
    watched: Watched, runtime: Runtime
) -> None:
    # GIVEN an operator with the ADMIN group only, on the operator view
    page = watched.page
    sign_in(page, OPERATOR, groups=("ADMIN",))
    page.goto("/#/operator")
    # THEN the socket is open for the operator and the brokers' live status came over it
    expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    zerodha = page.get_by_test_id("admin-brokers").locator('tr[data-broker="zerodha"]')
    expect(zerodha.get_by_test_id("broker-live")).to_have_text("ACTIVE")
    # AND every alarm is listed from local mode's evaluation, QuarantinedReports OK
    alarms = page.get_by_test_id("alarms")
    quarantined = alarms.locator('tr[data-alarm="QuarantinedReports"]')
    expect(quarantined).to_have_attribute("data-state", "OK")
    expect(alarms.locator('tr[data-alarm="DlqDepth"]')).to_contain_text("Not measured in local")
    expect(page.get_by_test_id("alarm-count")).to_contain_text("local mode")

    # WHEN a broker sends a signed report that cannot be true (twice the child filled)
    answer = _impossible_report(runtime, _filled_child(runtime))
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "quarantined"
    # AND the operator refreshes the summary
    page.get_by_role("button", name="Refresh").click()
    # THEN QuarantinedReports is in ALARM with CloudWatch's kind of reason, listed first
    expect(quarantined).to_have_attribute("data-state", "ALARM")
    expect(quarantined).to_contain_text("Threshold Crossed")
    # (a latency alarm may fire too on a loaded machine: the count is not pinned to one)
    expect(page.get_by_test_id("alarm-count")).to_contain_text(re.compile(r"\d+ in alarm"))
    expect(alarms.locator("tbody tr").first).to_have_attribute("data-state", "ALARM")

    # WHEN another operator puts a broker in maintenance
    _set_status(runtime, "zerodha", "MAINTENANCE", "alarm drill")
    try:
        # THEN the live column shows it without a reload (BROKER_STATUS on the socket)
        expect(zerodha.get_by_test_id("broker-live")).to_have_text("MAINTENANCE (alarm drill)")
        page.reload()
        expect(quarantined).to_have_attribute("data-state", "ALARM")
        expect(page.get_by_test_id("quarantine")).to_be_visible()
        expect(zerodha.get_by_test_id("broker-live")).to_contain_text("MAINTENANCE")
        screenshot(page, "operator")
    finally:
        _set_status(runtime, "zerodha", "ACTIVE", "drill over")
    expect(zerodha.get_by_test_id("broker-live")).to_have_text("ACTIVE (drill over)")
    watched.assert_clean()
