"""track_execution with EventBridge events and MSK batches, real Postgres and Redis."""

from __future__ import annotations

import base64
import json
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from pydantic import ValidationError

import shared.wiring
from functions.track_execution import handler
from local.apigw import LocalLambdaContext
from shared.domain.contracts import (
    DetailType,
    EventSource,
    MessageType,
    execution_reported_event,
)
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import Exchange, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import child_placed_event
from shared.ports import TrackedExecution
from shared.settings import Settings
from shared.wiring import Wiring
from tests import factories
from tests.handlers.support import RecordingNotifier


def routed_children(
    wiring: Wiring, *, children: int = 1, quantity: int = 100, symbol: str = "RELIANCE"
) -> list[ChildOrder]:
    """An order of trader-1 split over ``children`` zerodha children, placed and acknowledged."""
    request = factories.order(quantity=quantity * children, symbol=symbol)
    routing = factories.decision(request, {"zerodha": quantity * children})
    kids = [
        ChildOrder(
            child_order_id=f"{request.order_id}-{n}",
            order_id=request.order_id,
            user_id=request.user_id,
            broker_id="zerodha",
            symbol=request.symbol,
            exchange=Exchange.NSE,
            side=Side.BUY,
            quantity=quantity,
            order_type=request.order_type,
            product=request.product,
            expected_price=Decimal("1295.50"),
            arrival_bid=Decimal("1295.00"),
            arrival_ask=Decimal("1295.50"),
            placed_at=factories.NOW,
        )
        for n in range(children)
    ]
    wiring.orders.save_routed_order(
        request, request_hash="a" * 64, decision=routing, children=kids, events=[]
    )
    placed = [
        k.model_copy(
            update={"status": ChildOrderStatus.PLACED, "broker_order_id": f"Z-{k.child_order_id}"}
        )
        for k in kids
    ]
    wiring.orders.record_placements(request.order_id, placed, [], {"status": "ROUTED"})
    return placed


def report(
    child: ChildOrder, status: ExecutionStatus, filled: int, price: str | None, ms: int
) -> ExecutionReport:
    return ExecutionReport(
        broker_id=child.broker_id,
        broker_order_id=child.broker_order_id or "x",
        child_order_id=child.child_order_id,
        status=status,
        quantity=child.quantity,
        filled_quantity=filled,
        average_price=Decimal(price) if price else None,
        symbol=child.symbol,
        exchange=child.exchange,
        side=child.side,
        event_time=factories.NOW + timedelta(milliseconds=ms),
    )


def eventbridge(child: ChildOrder, rep: ExecutionReport) -> dict[str, Any]:
    event = execution_reported_event(child.order_id, child.user_id, rep, uuid.uuid4())
    return {
        "version": "0",
        "id": str(event.event_id),
        "detail-type": event.detail_type,
        "source": event.source,
        "account": "123456789012",
        "time": "2026-11-25T09:30:00Z",
        "region": "ap-south-1",
        "resources": [],
        "detail": json.loads(json.dumps(event.detail)),
    }


def msk_batch(values: list[bytes]) -> dict[str, Any]:
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:ap-south-1:123456789012:cluster/c/1",
        "bootstrapServers": "b-1:9098",
        "records": {
            "order-executions-0": [
                {
                    "topic": "order-executions",
                    "partition": 0,
                    "offset": offset,
                    "timestamp": 1764063000000,
                    "timestampType": "CREATE_TIME",
                    "key": None,
                    "value": base64.b64encode(value).decode(),
                    "headers": [],
                }
                for offset, value in enumerate(values)
            ]
        },
    }


def envelope(child: ChildOrder, rep: ExecutionReport) -> bytes:
    event = eventbridge(child, rep)
    return json.dumps({"detail-type": event["detail-type"], "detail": event["detail"]}).encode()


def rows(wiring: Wiring, sql: str) -> list[dict[str, Any]]:
    with wiring.database.connection() as conn:
        return conn.execute(sql).fetchall()


def test_fill_is_measured_stored_learned_and_pushed(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN a placed child of 100 shares expected at 1295.50
    [child] = routed_children(wiring)
    before = wiring.profile_repository.get("zerodha", "RELIANCE")
    assert before is not None
    # WHEN the broker reports it filled at 1296.00 after 180 ms
    result = handler.lambda_handler(
        eventbridge(child, report(child, ExecutionStatus.FILLED, 100, "1296.00", 180)),
        LocalLambdaContext("test"),
    )
    # THEN the metrics row holds the hand-computed figures
    assert result == {"outcome": "recorded"}
    [metric] = rows(wiring, "SELECT * FROM execution_metrics")
    assert metric["execution_latency_ms"] == 180
    # 1e4 * (1296.00 - 1295.50) / 1295.50 outside the arrival ask: slippage, no improvement
    assert metric["slippage_bps"] == Decimal("3.8595")
    assert metric["price_improvement_bps"] == Decimal("0.0000")
    assert metric["fill_rate"] == Decimal("100.00")
    assert metric["filled_quantity"] == 100
    assert metric["charges_inr"] > 0
    # AND the child is filled, the profile learned one sample, and the owner was told
    [stored] = rows(wiring, "SELECT status, filled_quantity FROM child_orders")
    assert stored == {"status": "FILLED", "filled_quantity": 100}
    after = wiring.profile_repository.get("zerodha", "RELIANCE")
    assert after is not None
    assert after.sample_count == before.sample_count + 1
    assert [(u, t) for u, t, _ in notifier.messages] == [("trader-1", MessageType.EXECUTION_UPDATE)]
    assert notifier.messages[0][2]["filledQuantity"] == 100
    # AND subscribers of RELIANCE see the learned profile
    [(symbol, kind, profile)] = notifier.profile_updates
    assert (symbol, kind, profile["sampleCount"]) == (
        "RELIANCE",
        MessageType.PROFILE_UPDATE,
        after.sample_count,
    )


def test_duplicate_event_is_a_no_op(wiring: Wiring, notifier: RecordingNotifier) -> None:
    # GIVEN a fill already tracked
    [child] = routed_children(wiring)
    event = eventbridge(child, report(child, ExecutionStatus.FILLED, 100, "1296.00", 180))
    handler.lambda_handler(event, LocalLambdaContext("test"))
    samples = wiring.profile_repository.get("zerodha", "RELIANCE")
    # WHEN EventBridge delivers it again
    result = handler.lambda_handler(event, LocalLambdaContext("test"))
    # THEN nothing changes
    assert result == {"outcome": "duplicate"}
    assert len(rows(wiring, "SELECT id FROM execution_metrics")) == 1
    assert wiring.profile_repository.get("zerodha", "RELIANCE") == samples
    assert len(notifier.messages) == 1


def test_rejection_counts_as_an_error(wiring: Wiring) -> None:
    # GIVEN a placed child and a profile with a known error rate
    [child] = routed_children(wiring)
    before = wiring.profile_repository.get("zerodha", "RELIANCE")
    assert before is not None
    # WHEN the broker rejects it
    handler.lambda_handler(
        eventbridge(child, report(child, ExecutionStatus.REJECTED, 0, None, 40)),
        LocalLambdaContext("test"),
    )
    # THEN fill rate 0 is stored and the error rate rises to its posterior: the seeded figure
    #      (its prior, worth at most 5 observations) and earlier outcomes, then this error
    [metric] = rows(wiring, "SELECT fill_rate, slippage_bps FROM execution_metrics")
    assert metric == {"fill_rate": Decimal("0.00"), "slippage_bps": None}
    after = wiring.profile_repository.get("zerodha", "RELIANCE")
    assert after is not None
    assert after.sample_count == before.sample_count + 1
    assert after.uncertainty is not None
    # (a few observations' worth: the seeded figure and the day-one prior, then this error)
    assert 1 < after.uncertainty.error_rate.weight < 10
    assert after.error_rate_percentage > before.error_rate_percentage + 10


def test_order_routed_pushes_a_routing_update(wiring: Wiring, notifier: RecordingNotifier) -> None:
    # GIVEN an OrderRouted event of trader-1
    routed = factories.routed_event(factories.order(order_id="ord-1", symbol="TCS"))
    event = {
        "detail-type": routed.detail_type,
        "source": routed.source,
        "detail": json.loads(json.dumps(routed.detail)),
    }
    # WHEN it is handled
    handler.lambda_handler(event, LocalLambdaContext("test"))
    # THEN trader-1 gets a ROUTING_UPDATE for that order: the payload, keyed by its order
    [(user, kind, data)] = notifier.messages
    assert (user, kind) == ("trader-1", MessageType.ROUTING_UPDATE)
    assert data["orderId"] == "ord-1"
    assert data["symbol"] == "TCS"
    assert data["allocations"] == [
        {"brokerId": "zerodha", "quantity": 100, "allocationPercentage": "100.00", "priority": 1}
    ]


def test_an_order_routed_event_missing_its_payload_is_refused(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN an OrderRouted detail with the envelope only (no symbol, side, allocations...)
    event = {
        "detail-type": DetailType.ORDER_ROUTED,
        "source": EventSource.ROUTING,
        "detail": {
            "schema_version": 1,
            "order_id": "ord-1",
            "user_id": "trader-1",
            "idempotency_key": "k",
            "symbol": "TCS",
        },
    }
    # WHEN it is handled THEN it fails (EventBridge retries, then dead-letters it)
    with pytest.raises(ValidationError, match="allocations"):
        handler.lambda_handler(event, LocalLambdaContext("test"))
    # AND nobody was told anything
    assert notifier.messages == []


@pytest.mark.parametrize("detail_type", ["OrderExploded", DetailType.CHILD_ORDER_PLACED])
def test_an_event_the_tracker_does_not_handle_is_refused(
    wiring: Wiring, notifier: RecordingNotifier, detail_type: str
) -> None:
    # GIVEN an event of no contract, and a contract's event the tracker has no rule for
    [child] = routed_children(wiring)
    placed = child_placed_event(child, uuid.uuid4())
    event = {"detail-type": detail_type, "source": placed.source, "detail": placed.detail}
    # WHEN it is handled THEN it is refused by name (a ValueError: EventBridge retries it)
    with pytest.raises(ValueError, match=str(detail_type)):
        handler.lambda_handler(event, LocalLambdaContext("test"))
    assert notifier.messages == []


def test_msk_batch_reports_exactly_the_poison_records(wiring: Wiring) -> None:
    # GIVEN a batch of 100 records, 3 of them poison (not JSON, no detail, an impossible report)
    children = routed_children(wiring, children=97, quantity=10)
    values = [envelope(c, report(c, ExecutionStatus.FILLED, 10, "1295.55", 150)) for c in children]
    bad_report = json.loads(values[0])
    bad_report["detail"]["report"]["filledQuantity"] = 11  # more than ordered
    poison = [
        b"{not json",
        json.dumps({"detail-type": DetailType.EXECUTION_REPORTED}).encode(),
        json.dumps(bad_report).encode(),
    ]
    positions = [5, 50, 99]
    for position, value in zip(positions, poison, strict=True):
        values.insert(position, value)
    # WHEN the batch is handled
    result = handler.lambda_handler(msk_batch(values), LocalLambdaContext("test"))
    # THEN 97 are stored and exactly the three poison offsets are reported as failures
    failures = [f["itemIdentifier"]["offset"] for f in result["batchItemFailures"]]
    assert sorted(failures) == positions
    assert len(rows(wiring, "SELECT id FROM execution_metrics")) == 97


@pytest.mark.parametrize("transport", ["eventbridge", "msk"])
def test_shuffled_reports_with_duplicates_end_like_the_serial_run(
    wiring: Wiring, transport: str
) -> None:
    # GIVEN 400 children each reported partially then completely (800 unique reports) and 200
    # duplicates: 1,000 reports. Every child fills alike, so the learned averages do not depend
    # on the order children complete in, only on each report being counted exactly once.
    def reports_for(children: list[ChildOrder]) -> list[tuple[ChildOrder, ExecutionReport]]:
        out = []
        for child in children:
            out.append((child, report(child, ExecutionStatus.PARTIALLY_FILLED, 4, "1295.50", 100)))
            out.append((child, report(child, ExecutionStatus.FILLED, 10, "1295.80", 200)))
        return out

    unique = reports_for(routed_children(wiring, children=400, quantity=10))
    rng = random.Random(42)
    shuffled = unique + rng.sample(unique, k=200)
    rng.shuffle(shuffled)
    serial = reports_for(routed_children(wiring, children=400, quantity=10, symbol="TCS"))
    # WHEN the shuffled stream arrives one event per invocation or in MSK batches of 100 (so
    # a child's two reports, and a report and its duplicate, often share a batch), and the
    # de-duplicated TCS stream arrives in order, one event per invocation
    if transport == "eventbridge":
        outcomes = [
            handler.lambda_handler(eventbridge(c, r), LocalLambdaContext("test"))["outcome"]
            for c, r in shuffled
        ]
        assert outcomes.count("recorded") == 800
        assert outcomes.count("duplicate") == 200
    else:
        for start in range(0, len(shuffled), 100):
            values = [envelope(c, r) for c, r in shuffled[start : start + 100]]
            result = handler.lambda_handler(msk_batch(values), LocalLambdaContext("test"))
            assert result["batchItemFailures"] == []
    for c, r in serial:
        handler.lambda_handler(eventbridge(c, r), LocalLambdaContext("test"))
    # THEN every unique report is stored exactly once and every child ends filled at 1295.80
    assert len(shuffled) == 1000
    [counted] = rows(
        wiring, "SELECT count(*) AS n FROM execution_metrics WHERE symbol = 'RELIANCE'"
    )
    assert counted["n"] == 800
    finals = rows(
        wiring,
        "SELECT DISTINCT status, filled_quantity, average_price FROM child_orders "
        "WHERE symbol = 'RELIANCE'",
    )
    assert finals == [
        {"status": "FILLED", "filled_quantity": 10, "average_price": Decimal("1295.8000")}
    ]
    [total] = rows(
        wiring, "SELECT sum(filled_quantity) AS n FROM execution_metrics WHERE symbol = 'RELIANCE'"
    )
    assert total["n"] == 4000
    # AND the learned profile equals the serial run's
    shuffled_profile = wiring.profile_repository.get("zerodha", "RELIANCE")
    serial_profile = wiring.profile_repository.get("zerodha", "TCS")
    assert shuffled_profile is not None
    assert serial_profile is not None
    learned = (
        "avg_execution_time_ms",
        "fill_rate_percentage",
        "slippage_bps",
        "price_improvement_bps",
        "error_rate_percentage",
        "sample_count",
    )
    assert {f: getattr(shuffled_profile, f) for f in learned} == {
        f: getattr(serial_profile, f) for f in learned
    }


def test_batch_folds_a_childs_reports_in_order_and_quarantines_only_the_contradiction(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN one batch holding, for child A, its fill before its partial (out of order) and a
    # duplicate of the partial; for child B a partial then its fill; a report claiming child C
    # from another broker; and a broker order we never sent
    a, b, c = routed_children(wiring, children=3, quantity=10)
    forged = report(c, ExecutionStatus.FILLED, 10, "1295.60", 150).model_copy(
        update={"broker_id": "upstox"}
    )
    stranger = report(a, ExecutionStatus.FILLED, 10, "1295.60", 150).model_copy(
        update={"child_order_id": None, "broker_order_id": "Z-never-sent"}
    )
    values = [
        envelope(a, report(a, ExecutionStatus.FILLED, 10, "1295.80", 200)),
        envelope(a, report(a, ExecutionStatus.PARTIALLY_FILLED, 4, "1295.50", 100)),
        envelope(a, report(a, ExecutionStatus.PARTIALLY_FILLED, 4, "1295.50", 100)),
        envelope(b, report(b, ExecutionStatus.PARTIALLY_FILLED, 4, "1295.50", 100)),
        envelope(b, report(b, ExecutionStatus.FILLED, 10, "1295.80", 200)),
        envelope(c, forged),
        envelope(a, stranger),
    ]
    # WHEN the batch is handled
    result = handler.lambda_handler(msk_batch(values), LocalLambdaContext("test"))
    # THEN nothing fails: the contradiction is quarantined with its reason (so it is never
    # retried into the dead-letter queue), C is untouched, and A and B end filled at 1295.80
    assert result["batchItemFailures"] == []
    [held] = rows(wiring, "SELECT child_order_id, reason, stage FROM quarantined_reports")
    assert held == {
        "child_order_id": c.child_order_id,
        "reason": "BROKER_MISMATCH",
        "stage": "tracking",
    }
    children = rows(
        wiring,
        "SELECT child_order_id, status, filled_quantity, average_price FROM child_orders "
        "ORDER BY child_order_id",
    )
    assert [(r["status"], r["filled_quantity"], r["average_price"]) for r in children] == [
        ("FILLED", 10, Decimal("1295.8000")),
        ("FILLED", 10, Decimal("1295.8000")),
        ("PLACED", 0, None),
    ]
    # AND A's late partial is stored once with nothing filled (the fill already counted it),
    # B's two reports add up to the child, and C and the stranger left no row
    stored = rows(
        wiring,
        "SELECT child_order_id, status, filled_quantity FROM execution_metrics ORDER BY id",
    )
    assert [(r["child_order_id"], r["status"], r["filled_quantity"]) for r in stored] == [
        (a.child_order_id, "FILLED", 10),
        (a.child_order_id, "PARTIALLY_FILLED", 0),
        (b.child_order_id, "PARTIALLY_FILLED", 4),
        (b.child_order_id, "FILLED", 6),
    ]
    # AND the trader heard of each stored report once, after the commit, and the profile
    # learned four observations
    assert [m[2]["childOrderId"] for m in notifier.messages] == [
        r["child_order_id"] for r in stored
    ]
    profile = wiring.profile_repository.get("zerodha", "RELIANCE")
    assert profile is not None
    assert [u[2]["sampleCount"] for u in notifier.profile_updates] == [profile.sample_count]


def test_batch_fails_every_report_when_postgres_is_unreachable(
    unreachable_postgres: Settings, monkeypatch: pytest.MonkeyPatch, wiring: Wiring
) -> None:
    # GIVEN two well-formed reports and a service whose Postgres does not answer
    children = routed_children(wiring, children=2, quantity=10)
    values = [envelope(c, report(c, ExecutionStatus.FILLED, 10, "1295.55", 150)) for c in children]
    monkeypatch.setattr(shared.wiring, "get_wiring", lambda: Wiring(unreachable_postgres))
    # WHEN the batch is handled
    # THEN the invocation fails as a whole (the event source retries the batch) and nothing
    # was stored
    with pytest.raises(BatchProcessingError):
        handler.lambda_handler(msk_batch(values), LocalLambdaContext("test"))
    assert rows(wiring, "SELECT id FROM execution_metrics") == []


def test_a_fill_after_a_timeout_is_stored_and_marks_the_order_overfilled(
    wiring: Wiring, notifier: RecordingNotifier, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an order of 10 whose zerodha child timed out, its quantity cascaded to upstox
    [first] = routed_children(wiring, children=1, quantity=10)
    timed_out = first.model_copy(update={"status": ChildOrderStatus.TIMED_OUT})
    cascaded = first.model_copy(
        update={
            "child_order_id": f"{first.order_id}-c1",
            "broker_id": "upstox",
            "broker_order_id": f"U-{first.order_id}",
            "attempt": 2,
            "cascaded_from": "zerodha",
        }
    )
    wiring.orders.record_placements(first.order_id, [timed_out, cascaded], [], {})
    # WHEN upstox fills the order, and then zerodha fills the child it had timed out on
    handler.lambda_handler(
        eventbridge(cascaded, report(cascaded, ExecutionStatus.FILLED, 10, "1295.60", 150)),
        LocalLambdaContext("test"),
    )
    [order_after_cascade] = rows(wiring, "SELECT status FROM orders")
    capsys.readouterr()
    outcome = handler.lambda_handler(
        eventbridge(timed_out, report(timed_out, ExecutionStatus.FILLED, 10, "1295.70", 900)),
        LocalLambdaContext("test"),
    )
    # THEN the cascade completed the order, and the late fill is stored (it happened), turns
    # the order OVERFILLED, is flagged to the trader and counted for the alarm
    assert order_after_cascade["status"] == "COMPLETED"
    assert outcome == {"outcome": "recorded"}
    [order] = rows(wiring, "SELECT status FROM orders")
    assert order["status"] == "OVERFILLED"
    fills = rows(wiring, "SELECT broker_id, filled_quantity FROM execution_metrics ORDER BY id")
    assert fills == [
        {"broker_id": "upstox", "filled_quantity": 10},
        {"broker_id": "zerodha", "filled_quantity": 10},
    ]
    assert [m[2]["lateAfterTimeout"] for m in notifier.messages] == [False, True]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    late = [e[handler.LATE_FILLS_METRIC] for e in emitted if handler.LATE_FILLS_METRIC in e]
    assert late == [[1.0]]


def test_concurrent_batches_sharing_children_neither_deadlock_nor_double_count(
    wiring: Wiring,
) -> None:
    # GIVEN 60 children, and two batches that both report on every one of them in opposite
    # orders: one with each child's partial fill, one with its fill and a repeat of the partial
    children = routed_children(wiring, children=60, quantity=10)
    partials = [report(c, ExecutionStatus.PARTIALLY_FILLED, 4, "1295.50", 100) for c in children]
    fills = [report(c, ExecutionStatus.FILLED, 10, "1295.80", 200) for c in children]
    first = partials
    second = list(reversed(fills)) + partials[::7]
    # WHEN two consumers track them at the same time
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(wiring.tracker.track_batch, [first, second]))
    # THEN both commit, every unique report is stored once and every child ends filled
    statuses = [o.status for batch in outcomes for o in batch if isinstance(o, TrackedExecution)]
    assert len(statuses) == len(first) + len(second)
    assert statuses.count("recorded") == 120
    [stored] = rows(
        wiring, "SELECT count(*) AS n, sum(filled_quantity) AS q FROM execution_metrics"
    )
    assert (stored["n"], stored["q"]) == (120, 600)
    finals = rows(wiring, "SELECT DISTINCT status, filled_quantity FROM child_orders")
    assert finals == [{"status": "FILLED", "filled_quantity": 10}]


def test_msk_batch_mixes_routing_updates_and_reports_known_by_broker_order_id_only(
    wiring: Wiring, notifier: RecordingNotifier
) -> None:
    # GIVEN a batch with an OrderRouted event and a fill that names only the broker's order id
    # (a broker that does not echo our child id)
    [child] = routed_children(wiring, children=1, quantity=10)
    anonymous = report(child, ExecutionStatus.FILLED, 10, "1295.60", 150).model_copy(
        update={"child_order_id": None}
    )
    request = factories.order(order_id=child.order_id, user_id=child.user_id)
    routed_event = factories.routed_event(request)
    routed = {"detail-type": routed_event.detail_type, "detail": routed_event.detail}
    values = [json.dumps(routed).encode(), envelope(child, anonymous)]
    # WHEN the batch is handled
    result = handler.lambda_handler(msk_batch(values), LocalLambdaContext("test"))
    # THEN both succeed: the trader hears of the routing and of the fill of the right child
    assert result["batchItemFailures"] == []
    assert [(m[1], m[2].get("childOrderId")) for m in notifier.messages] == [
        (MessageType.ROUTING_UPDATE, None),
        (MessageType.EXECUTION_UPDATE, child.child_order_id),
    ]
    [stored] = rows(wiring, "SELECT child_order_id FROM execution_metrics")
    assert stored["child_order_id"] == child.child_order_id
