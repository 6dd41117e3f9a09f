"""functions/admin through lambda_handler: real Postgres and Redis, the real wiring."""

from __future__ import annotations

from typing import Any

import pytest

import shared.wiring
from functions.admin import handler as admin
from functions.route_order import handler as route_order
from shared.domain.contracts import ADMIN_PREFIX, MessageType
from shared.settings import Settings
from shared.wiring import Wiring
from tests.handlers.support import ADMIN, API, TRADER, RecordingNotifier, call

BROKERS = f"{ADMIN_PREFIX}/brokers"
MARKET_BUY = {
    "symbol": "RELIANCE",
    "side": "BUY",
    "quantity": 100,
    "orderType": "MARKET",
    "routingObjective": "SMART_BALANCE",
}
NEW_BROKER = {
    "brokerId": "newbroker",
    "displayName": "New Broker",
    "adapter": "paper",
    "adapterConfig": {"rejectRate": 0.0},
    "webhookAuth": "HMAC",
    "webhookSecretRef": "newbroker/webhook",
    "feeSchedule": {"intraday": {"minInr": "20", "capInr": "20"}},
    "lotSize": 1,
    "rateLimitPerS": 10,
}


def _status(broker_id: str, status: str, reason: str = "exchange connectivity") -> Any:
    return call(
        admin,
        "PUT",
        f"{BROKERS}/{broker_id}/status",
        body={"status": status, "reason": reason},
        claims=ADMIN,
    )


def _route(body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, answer, _ = call(route_order, "POST", f"{API}/orders/smart", body=body or MARKET_BUY)
    assert status == 200, answer
    return dict(answer)


def test_list_brokers_shows_every_broker_active(wiring: Wiring) -> None:
    # GIVEN the seeded paper brokers
    # WHEN an operator lists brokers
    status, body, _ = call(admin, "GET", BROKERS, claims=ADMIN)
    # THEN each is there, ACTIVE, with its configuration and no secret but its reference
    assert status == 200, body
    ids = [b["broker"]["brokerId"] for b in body["brokers"]]
    assert ids == sorted(ids)
    assert "zerodha" in ids
    assert {b["status"] for b in body["brokers"]} == {"ACTIVE"}
    assert body["brokers"][0]["broker"]["webhookSecretRef"]


def test_maintenance_takes_effect_from_the_next_order_is_audited_and_pushed(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN an order routed through zerodha among others (the profile cache is now warm)
    first = _route()
    scores = {s["brokerId"]: s for s in first["brokerScores"]}
    assert scores["zerodha"]["exclusionReason"] is None, first
    # WHEN an operator puts zerodha in MAINTENANCE with a reason
    status, body, _ = _status("zerodha", "MAINTENANCE", "exchange connectivity")
    # THEN the answer shows the new status and reason
    assert status == 200, body
    assert (body["status"], body["reason"]) == ("MAINTENANCE", "exchange connectivity")
    # AND the very next order gives zerodha nothing, excluded with the status as its reason
    nxt = _route({**MARKET_BUY, "clientOrderId": "after-maintenance"})
    assert "zerodha" not in {a["brokerId"] for a in nxt["allocations"]}
    zerodha = next(s for s in nxt["brokerScores"] if s["brokerId"] == "zerodha")
    assert zerodha["exclusionReason"]
    assert "MAINTENANCE" in zerodha["exclusionReason"]
    # AND the change is audited with its actor, old and new status
    status, audit, _ = call(admin, "GET", f"{ADMIN_PREFIX}/audit", claims=ADMIN)
    assert status == 200, audit
    entry = audit["entries"][0]
    assert (entry["brokerId"], entry["action"], entry["oldStatus"], entry["newStatus"]) == (
        "zerodha",
        "STATUS",
        "ACTIVE",
        "MAINTENANCE",
    )
    assert (entry["actor"], entry["reason"]) == ("operator-1", "exchange connectivity")
    # AND every connected client was sent BROKER_STATUS
    assert len(notifier.broadcasts) == 1
    kind, data = notifier.broadcasts[0]
    assert kind == MessageType.BROKER_STATUS
    assert (data["brokerId"], data["status"], data["changedBy"]) == (
        "zerodha",
        "MAINTENANCE",
        "operator-1",
    )
    assert data["changedAt"]


def test_active_again_routes_to_the_broker_again(wiring: Wiring) -> None:
    # GIVEN zerodha suspended
    assert _status("zerodha", "SUSPENDED", "compliance review")[0] == 200
    suspended = _route({**MARKET_BUY, "clientOrderId": "while-suspended"})
    reason = next(s for s in suspended["brokerScores"] if s["brokerId"] == "zerodha")
    assert "SUSPENDED" in reason["exclusionReason"]
    # WHEN it is set ACTIVE again
    assert _status("zerodha", "ACTIVE", "review passed")[0] == 200
    # THEN the next order may use it again (its profile's own status is back)
    again = _route({**MARKET_BUY, "clientOrderId": "after-active"})
    score = next(s for s in again["brokerScores"] if s["brokerId"] == "zerodha")
    assert score["exclusionReason"] is None, score


def test_register_then_update_then_duplicate(wiring: Wiring) -> None:
    # GIVEN no broker called newbroker
    # WHEN an operator registers it
    status, body, _ = call(admin, "POST", BROKERS, body=NEW_BROKER, claims=ADMIN)
    # THEN it is created ACTIVE (201) and stored
    assert status == 201, body
    assert (body["broker"]["brokerId"], body["status"]) == ("newbroker", "ACTIVE")
    stored = wiring.brokers.get("newbroker")
    assert stored is not None
    assert stored.rate_limit_per_s == 10
    # AND registering it again is a 409 in the one error shape
    status, body, _ = call(admin, "POST", BROKERS, body=NEW_BROKER, claims=ADMIN)
    assert status == 409, body
    assert body["error"]["code"] == "CONFLICT"
    # WHEN its fees and rate limit are updated
    patch = {"rateLimitPerS": 25, "feeSchedule": {"intraday": {"minInr": "10", "capInr": "10"}}}
    status, body, _ = call(admin, "PATCH", f"{BROKERS}/newbroker", body=patch, claims=ADMIN)
    # THEN the change is stored, the rest kept, and both changes audited
    assert status == 200, body
    updated = wiring.brokers.get("newbroker")
    assert updated is not None
    assert updated.rate_limit_per_s == 25
    assert str(updated.fee_schedule.intraday.cap_inr) == "10"
    assert updated.webhook_secret_ref == "newbroker/webhook"
    status, audit, _ = call(
        admin, "GET", f"{ADMIN_PREFIX}/audit", claims=ADMIN, query={"brokerId": "newbroker"}
    )
    assert status == 200, audit
    assert [e["action"] for e in audit["entries"]] == ["UPDATE", "REGISTER"]
    assert audit["entries"][0]["changes"]["rate_limit_per_s"] == 25


@pytest.mark.parametrize(
    "case",
    [
        (
            "PUT",
            f"{BROKERS}/nobroker/status",
            {"status": "ACTIVE", "reason": "x"},
            "NOT_FOUND",
            404,
        ),
        ("PATCH", f"{BROKERS}/nobroker", {"rateLimitPerS": 5}, "NOT_FOUND", 404),
        ("PUT", f"{BROKERS}/zerodha/status", {"status": "MAINTENANCE"}, "VALIDATION_FAILED", 422),
        (
            "PUT",
            f"{BROKERS}/zerodha/status",
            {"status": "MAINTENANCE", "reason": ""},
            "VALIDATION_FAILED",
            422,
        ),
        (
            "PUT",
            f"{BROKERS}/zerodha/status",
            {"status": "BROKEN", "reason": "x"},
            "VALIDATION_FAILED",
            422,
        ),
        (
            "PUT",
            f"{BROKERS}/Bad_Id!/status",
            {"status": "ACTIVE", "reason": "x"},
            "VALIDATION_FAILED",
            422,
        ),
        ("POST", BROKERS, {**NEW_BROKER, "adapter": "telnet"}, "VALIDATION_FAILED", 422),
        ("POST", BROKERS, "[1]", "VALIDATION_FAILED", 422),
        ("POST", BROKERS, "{not json", "MALFORMED_JSON", 400),
        ("DELETE", BROKERS, None, "METHOD_NOT_ALLOWED", 405),
    ],
)
def test_bad_requests_answer_in_the_one_error_shape(
    wiring: Wiring, case: tuple[str, str, Any, str, int]
) -> None:
    method, path, body, code, status = case
    # GIVEN an operator
    # WHEN the request is wrong
    answer_status, answer, _ = call(admin, method, path, body=body, claims=ADMIN)
    # THEN it is refused with the right status and code, and nothing changed
    assert (answer_status, answer["error"]["code"]) == (status, code), answer
    assert {b.status.value for b in wiring.admin.list_brokers()} == {"ACTIVE"}
    assert wiring.admin.audit(limit=10) == []


@pytest.mark.parametrize(
    "caller",
    [
        (TRADER, 403, "FORBIDDEN"),
        (None, 401, "UNAUTHENTICATED"),
        ({"sub": "x", "cognito:groups": "[TRADER admin]"}, 403, "FORBIDDEN"),
    ],
)
@pytest.mark.parametrize(
    "request_",
    [
        ("GET", BROKERS, None, None),
        ("PUT", f"{BROKERS}/zerodha/status", {"status": "MAINTENANCE", "reason": "x"}, None),
        ("PUT", f"{BROKERS}/zerodha/status", {"status": "nonsense"}, None),
        ("GET", f"{ADMIN_PREFIX}/audit", None, {"limit": "0"}),
        ("GET", f"{ADMIN_PREFIX}/quarantine", None, None),
    ],
)
def test_only_admins_get_in(
    wiring: Wiring,
    caller: tuple[dict[str, Any] | None, int, str],
    request_: tuple[str, str, Any, dict[str, str] | None],
) -> None:
    claims, status, code = caller
    method, path, body, query = request_
    # GIVEN a caller without the ADMIN group (a trader, nobody, a lower-case "admin")
    # WHEN it calls an admin route, even with a bad body or query
    answer_status, answer, _ = call(admin, method, path, body=body, claims=claims, query=query)
    # THEN it is refused before anything is read, in the one error shape
    assert answer_status == status, answer
    assert answer["error"]["code"] in (code, "UNAUTHORIZED", "UNAUTHENTICATED")
    assert {b.status.value for b in wiring.admin.list_brokers()} == {"ACTIVE"}


def test_profiles_quarantine_and_limits(wiring: Wiring) -> None:
    # GIVEN seeded profiles and no quarantined report
    # WHEN an operator lists RELIANCE's profiles, the quarantine and a bad limit
    status, profiles, _ = call(
        admin, "GET", f"{ADMIN_PREFIX}/profiles", claims=ADMIN, query={"symbol": "RELIANCE"}
    )
    q_status, held, _ = call(admin, "GET", f"{ADMIN_PREFIX}/quarantine", claims=ADMIN)
    bad_status, bad, _ = call(
        admin, "GET", f"{ADMIN_PREFIX}/quarantine", claims=ADMIN, query={"limit": "501"}
    )
    bad_symbol, _, _ = call(
        admin, "GET", f"{ADMIN_PREFIX}/profiles", claims=ADMIN, query={"symbol": "bad symbol"}
    )
    # THEN profiles come with their status, the quarantine is empty, the bad inputs are 422s
    assert status == 200, profiles
    assert profiles["profiles"]
    assert {p["symbol"] for p in profiles["profiles"]} == {"RELIANCE"}
    assert (q_status, held) == (200, {"reports": []})
    assert (bad_status, bad["error"]["code"]) == (422, "VALIDATION_FAILED")
    assert bad_symbol == 422


def test_status_change_with_postgres_down_is_a_503(
    wiring: Wiring, unreachable_postgres: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a wiring whose Postgres does not answer
    down = Wiring(unreachable_postgres, notifier=RecordingNotifier())
    monkeypatch.setattr(shared.wiring, "get_wiring", lambda: down)
    # WHEN an operator sets a status
    status, body, headers = _status("zerodha", "MAINTENANCE")
    down.database.close()
    # THEN it is a 503 with Retry-After, in the one error shape, and nobody was told
    assert status == 503, body
    assert body["error"]["code"] == "DATA_UNAVAILABLE"
    assert headers.get("Retry-After")
