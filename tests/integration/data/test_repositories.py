"""Round trips through every Postgres repository against a real server."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.adapters.postgres.analytics import PostgresAnalyticsRepository
from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.executions import PostgresExecutionRepository
from shared.adapters.postgres.orders import PostgresOrderRepository
from shared.adapters.postgres.outbox import PostgresOutbox
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import PostgresProfileRepository
from shared.domain.contracts import DetailType, DomainEvent, EventSource
from shared.domain.models import BrokerStatus, OrderType
from shared.domain.orders import ChildOrderStatus, placement_observation
from shared.ports import ExecutionRecord, Observed
from tests import factories


class RecordingPublisher:
    """A publish function that accepts everything and remembers it."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def __call__(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        self.events.extend(events)
        return []


def seed_brokers(db: Database, *broker_ids: str) -> None:
    repo = PostgresBrokerRepository(db)
    for broker_id in broker_ids:
        repo.upsert(factories.broker(broker_id))


def execution_record(order_id: str, **overrides: object) -> ExecutionRecord:
    values: dict[str, object] = {
        "report_key": f"zerodha:B-1:FILLED:100:{order_id}",
        "order_id": order_id,
        "child_order_id": f"{order_id}-1",
        "user_id": "trader-1",
        "broker_id": "zerodha",
        "symbol": "RELIANCE",
        "status": "FILLED",
        "filled_quantity": 100,
        "fill_price": Decimal("2951.0000"),
        "execution_latency_ms": 140,
        "slippage_bps": 1.6946,
        "price_improvement_bps": -0.5,
        "fill_rate": 100.0,
        "execution_quality_score": 0.912,
        "charges_inr": Decimal("330.25"),
        "market_conditions": {"spreadBps": 2.0},
    }
    values.update(overrides)
    return ExecutionRecord(**values)  # type: ignore[arg-type]


def test_broker_round_trip(db: Database) -> None:
    # GIVEN a broker with a fee schedule, lot size, freeze quantity and rate limit
    repo = PostgresBrokerRepository(db)
    original = factories.broker("dhan", lot_size=5, freeze_quantity=1800, rate_limit_per_s=25)
    # WHEN it is stored and read back
    repo.upsert(original)
    # THEN every field survives, and disabled brokers are not listed
    assert repo.get("dhan") == original
    repo.upsert(original.model_copy(update={"enabled": False}))
    assert [b.broker_id for b in repo.list_enabled()] == []
    assert repo.get("unknown") is None


def test_profile_round_trip_joins_broker_configuration(db: Database) -> None:
    # GIVEN two brokers and a profile for each
    seed_brokers(db, "zerodha", "upstox")
    repo = PostgresProfileRepository(db)
    zerodha = factories.profile("zerodha", status=BrokerStatus.BUSY, min_order_size=5)
    upstox = factories.profile(
        "upstox", supported_order_types=frozenset({OrderType.MARKET, OrderType.LIMIT})
    )
    # WHEN they are stored and read back for the symbol
    repo.upsert(zerodha)
    repo.upsert(upstox.model_copy(update={"supported_order_types": frozenset(OrderType)}))
    profiles = repo.list_for_symbol("RELIANCE")
    # THEN both come back with the stored values (broker-level fields from the brokers table)
    assert [p.broker_id for p in profiles] == ["upstox", "zerodha"]
    assert profiles[1] == zerodha
    assert repo.list_for_symbol("TCS") == []


def test_routed_order_is_written_in_one_transaction_and_read_back(db: Database) -> None:
    # GIVEN an order split over two brokers with its children and an outbox event
    seed_brokers(db, "zerodha", "upstox")
    repo = PostgresOrderRepository(db)
    request = factories.order(quantity=300)
    routing = factories.decision(request, {"zerodha": 200, "upstox": 100})
    kids = factories.children(request, routing)
    event = factories.routed_event(request)
    # WHEN it is saved
    decision_id = repo.save_routed_order(
        request, request_hash="a" * 64, decision=routing, children=kids, events=[event]
    )
    # THEN the owner sees decision, allocations and children; anyone else sees nothing
    assert decision_id is not None
    view = repo.get_order_view("trader-1", request.order_id)
    assert view is not None
    assert view.order.decision_id == decision_id
    assert [(a.broker_id, a.quantity) for a in view.allocations] == [
        ("zerodha", 200),
        ("upstox", 100),
    ]
    assert [c.status for c in view.child_orders] == ["PENDING", "PENDING"]
    assert repo.get_order_view("someone-else", request.order_id) is None
    # AND the outbox holds the event
    sent = RecordingPublisher()
    published, failed = PostgresOutbox(db).relay(sent, min_age_s=0)
    assert (published, failed) == (1, 0)
    assert [e.event_id for e in sent.events] == [event.event_id]


def test_same_client_order_id_writes_nothing_the_second_time(db: Database) -> None:
    # GIVEN an order already stored under a client order id
    seed_brokers(db, "zerodha")
    repo = PostgresOrderRepository(db)
    request = factories.order(client_order_id="cli-1")
    factories.store(repo, request)
    # WHEN another order arrives with the same client order id
    again = factories.order(client_order_id="cli-1")
    result = factories.store(
        repo, again, events=[factories.routed_event(again)], request_hash="b" * 64
    )
    # THEN nothing is written and the first order is what the key finds
    assert result is None
    stored = repo.find_by_client_order_id("trader-1", "cli-1")
    assert stored is not None
    assert stored.order_id == request.order_id
    assert stored.request_hash == "a" * 64
    with db.connection() as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM order_routing_decisions) AS d,"
            " (SELECT count(*) FROM child_orders) AS c, (SELECT count(*) FROM event_outbox) AS e"
        ).fetchone()
    assert counts == {"d": 1, "c": 1, "e": 0}


def test_failed_transaction_leaves_nothing_half_written(db: Database) -> None:
    # GIVEN a decision that names a broker the database does not know (FK violation on children)
    seed_brokers(db, "zerodha")
    repo = PostgresOrderRepository(db)
    request = factories.order()
    # WHEN saving it fails
    try:
        factories.store(
            repo, request, {"ghost": request.quantity}, [factories.routed_event(request)]
        )
    except psycopg.errors.ForeignKeyViolation:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("expected a foreign key violation")
    # THEN no order, decision, allocation or outbox row remains
    with db.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM order_routing_decisions)"
            " + (SELECT count(*) FROM order_allocations) + (SELECT count(*) FROM event_outbox)"
            " AS n"
        ).fetchone()
    assert row == {"n": 0}


def test_placements_update_children_and_record_cascades(db: Database) -> None:
    # GIVEN a stored order whose only child is rejected and cascaded to a fallback broker
    seed_brokers(db, "zerodha", "upstox")
    repo = PostgresOrderRepository(db)
    request = factories.order(quantity=100)
    routing = factories.decision(request)
    [child] = factories.children(request, routing)
    repo.save_routed_order(
        request, request_hash="a" * 64, decision=routing, children=[child], events=[]
    )
    rejected = child.model_copy(
        update={"status": ChildOrderStatus.REJECTED, "status_reason": "RMS: margin"}
    )
    cascaded = child.model_copy(
        update={
            "child_order_id": f"{request.order_id}-c2",
            "broker_id": "upstox",
            "attempt": 2,
            "cascaded_from": "zerodha",
            "status": ChildOrderStatus.PLACED,
            "broker_order_id": "UP-1",
        }
    )
    # WHEN the placements are recorded
    repo.record_placements(
        request.order_id, [rejected, cascaded], [], {"status": "ROUTED", "orderId": "x"}
    )
    # THEN the view shows the rejection, the cascade allocation and the new child
    view = repo.get_order_view("trader-1", request.order_id)
    assert view is not None
    assert [(c.broker_id, c.status) for c in view.child_orders] == [
        ("zerodha", "REJECTED"),
        ("upstox", "PLACED"),
    ]
    assert [(a.broker_id, a.cascaded_from) for a in view.allocations] == [
        ("zerodha", None),
        ("upstox", "zerodha"),
    ]
    found = repo.find_child_by_broker_order("upstox", "UP-1")
    assert found is not None
    assert found.child_order_id == cascaded.child_order_id
    assert repo.find_by_client_order_id("trader-1", request.client_order_id or "") is not None


def test_placement_outcomes_are_learned_once_even_if_recorded_twice(db: Database) -> None:
    # GIVEN a stored order whose zerodha child was rejected in 35 ms and cascaded to upstox,
    #       which acknowledged in 80 ms, and both brokers' RELIANCE profiles
    seed_brokers(db, "zerodha", "upstox")
    profiles = PostgresProfileRepository(db)
    for broker_id in ("zerodha", "upstox"):
        profiles.upsert(factories.profile(broker_id, error_rate_percentage=1.0))
    repo = PostgresOrderRepository(db)
    request = factories.order(quantity=100)
    routing = factories.decision(request)
    [child] = factories.children(request, routing)
    repo.save_routed_order(
        request, request_hash="a" * 64, decision=routing, children=[child], events=[]
    )
    rejected = child.model_copy(update={"status": ChildOrderStatus.REJECTED})
    cascaded = child.model_copy(
        update={
            "child_order_id": f"{request.order_id}-c1",
            "broker_id": "upstox",
            "attempt": 2,
            "cascaded_from": "zerodha",
            "status": ChildOrderStatus.PLACED,
        }
    )
    observed = [
        Observed(
            "zerodha",
            "RELIANCE",
            placement_observation(ChildOrderStatus.REJECTED, 35.0),  # type: ignore[arg-type]
            factories.NOW,
            rejected.child_order_id,
        ),
        Observed(
            "upstox",
            "RELIANCE",
            placement_observation(ChildOrderStatus.PLACED, 80.0),  # type: ignore[arg-type]
            factories.NOW,
            cascaded.child_order_id,
        ),
    ]
    # WHEN the placements are recorded, and then recorded again (a retry after a lost answer)
    learned = repo.record_placements(
        request.order_id, [rejected, cascaded], [], {}, observed=observed, alpha=0.5
    )
    again = repo.record_placements(
        request.order_id, [rejected, cascaded], [], {}, observed=observed, alpha=0.5
    )
    # THEN the reject was one error sample: its posterior, the seeded figures as first evidence
    zerodha = profiles.get("zerodha", "RELIANCE")
    assert zerodha is not None
    reject = placement_observation(ChildOrderStatus.REJECTED, 35.0)
    assert reject is not None
    seeded = factories.profile("zerodha", error_rate_percentage=1.0)
    post = factories.replayed_posterior("zerodha", "RELIANCE", [reject], alpha=0.5, before=seeded)
    assert zerodha.sample_count == 251
    assert zerodha.error_rate_percentage == round(100 * post.error.mean, 2) > 10.0
    assert zerodha.response_time_ms == round(post.ack.mean)  # INTEGER column
    # AND the acknowledgement taught upstox its ack time only, no outcome sample
    upstox = profiles.get("upstox", "RELIANCE")
    assert upstox is not None
    assert upstox.sample_count == 250
    assert upstox.error_rate_percentage < 2.0
    assert upstox.response_time_ms > 40  # moved from the seeded 40 ms towards 80 ms
    # AND the first call returned the learned profiles; the repeat learned nothing new
    assert learned[("zerodha", "RELIANCE")] == zerodha
    assert again[("zerodha", "RELIANCE")] == zerodha


def test_execution_metrics_are_recorded_once(db: Database) -> None:
    # GIVEN a stored order
    seed_brokers(db, "zerodha")
    request = factories.order()
    factories.store(PostgresOrderRepository(db), request)
    repo = PostgresExecutionRepository(db)
    record = execution_record(request.order_id)
    # WHEN the same report is recorded twice
    first = repo.record(record)
    second = repo.record(record)
    # THEN the second is a no-op reported as "already recorded"
    assert (first, second) == (True, False)
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) AS n, min(slippage_bps) AS s FROM execution_metrics")
        assert row.fetchone() == {"n": 1, "s": Decimal("1.6946")}


def test_outbox_relay_keeps_failed_events_for_the_next_pass(db: Database) -> None:
    # GIVEN two events in the outbox
    seed_brokers(db, "zerodha")
    request = factories.order()
    first, second = factories.routed_event(request), factories.routed_event(request)
    factories.store(PostgresOrderRepository(db), request, events=[first, second])
    outbox = PostgresOutbox(db)
    # WHEN a relay pass publishes the first and fails the second
    result = outbox.relay(lambda es: [e for e in es if e.event_id == second.event_id], min_age_s=0)
    # THEN only the failed one is sent again on the next pass, with its attempt counted
    assert result == (1, 1)
    again = RecordingPublisher()
    assert outbox.relay(again, min_age_s=0) == (1, 0)
    assert [e.event_id for e in again.events] == [second.event_id]
    with db.connection() as conn:
        row = conn.execute(
            "SELECT attempts FROM event_outbox WHERE event_id = %s", (second.event_id,)
        )
        assert row.fetchone() == {"attempts": 1}
    assert factories.unpublished_events(db) == 0


def test_outbox_relay_sets_aside_a_row_no_contract_reads(db: Database) -> None:
    # GIVEN an outbox holding a good event and two rows no contract reads (an unknown detail
    # type, and an OrderRouted whose payload lost its allocations)
    seed_brokers(db, "zerodha")
    request = factories.order()
    good = factories.routed_event(request)
    factories.store(PostgresOrderRepository(db), request, events=[good])
    broken = {k: v for k, v in good.detail.items() if k != "allocations"}
    strangers = [uuid.uuid4(), uuid.uuid4()]
    with db.connection() as conn:
        for event_id, detail_type, detail in [
            (strangers[0], "OrderExploded", good.detail),
            (strangers[1], DetailType.ORDER_ROUTED, broken),
        ]:
            conn.execute(
                "INSERT INTO event_outbox (event_id, source, detail_type, detail) "
                "VALUES (%s, %s, %s, %s)",
                (event_id, EventSource.ROUTING, detail_type, Jsonb(detail)),
            )
    # WHEN the relay runs
    sent = RecordingPublisher()
    result = PostgresOutbox(db).relay(sent, min_age_s=0)
    # THEN the good event is published unchanged, the strangers stay pending with their reason
    assert result == (1, 2)
    assert [e.detail for e in sent.events] == [good.detail]
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT event_id, attempts, last_error, published_at FROM event_outbox "
            "WHERE event_id = ANY(%s)",
            (strangers,),
        ).fetchall()
    assert {r["event_id"] for r in rows} == set(strangers)
    for row in rows:
        assert row["published_at"] is None
        assert row["attempts"] == 1
        assert row["last_error"].startswith("unreadable: ")


def test_outbox_relay_leaves_fresh_events_to_their_writer(db: Database) -> None:
    # GIVEN an event written just now
    seed_brokers(db, "zerodha")
    request = factories.order()
    factories.store(PostgresOrderRepository(db), request, events=[factories.routed_event(request)])
    # WHEN the relay runs with its default minimum age
    result = PostgresOutbox(db).relay(lambda es: [])
    # THEN it leaves the event alone
    assert result == (0, 0)
    assert factories.unpublished_events(db) == 1


def test_analytics_of_an_empty_window_are_zeros_and_unknowns(db: Database) -> None:
    # GIVEN a trader with no orders
    # WHEN analytics are asked for
    analytics = PostgresAnalyticsRepository(db).execution_analytics("nobody", 30)
    # THEN counts are zero, rates and averages unknown (null), and there are no breakdowns
    summary = analytics.summary
    assert (summary.orders, summary.child_executions, summary.ordered_quantity) == (0, 0, 0)
    assert summary.fill_rate_percentage is None
    assert summary.avg_latency_ms is None
    assert summary.avg_slippage_bps is None
    assert summary.total_charges_inr == Decimal(0)
    assert analytics.by_broker == ()
    assert analytics.by_strategy == ()


def test_broker_fill_rate_counts_rejected_and_timed_out_quantity(db: Database) -> None:
    # GIVEN upstox filled 100 shares and rejected another 100, dhan timed out on 100, and
    #       upstox's one execution has no price reference
    seed_brokers(db, "zerodha", "upstox", "dhan")
    orders_repo = PostgresOrderRepository(db)
    executions = PostgresExecutionRepository(db)
    first = factories.order(quantity=200)
    second = factories.order(quantity=100)
    third = factories.order(quantity=100)
    factories.store(orders_repo, first, {"zerodha": 100, "upstox": 100})
    factories.store(orders_repo, second, {"upstox": 100})
    factories.store(orders_repo, third, {"dhan": 100})
    outcomes = [
        (f"{first.order_id}-1", "FILLED", 100),
        (f"{first.order_id}-2", "FILLED", 100),
        (f"{second.order_id}-1", "REJECTED", 0),
        (f"{third.order_id}-1", "TIMED_OUT", 0),
    ]
    with db.connection() as conn:
        for child_id, status, filled in outcomes:
            conn.execute(
                "UPDATE child_orders SET status = %s, filled_quantity = %s, average_price = %s "
                "WHERE child_order_id = %s",
                (status, filled, Decimal("2950.50") if filled else None, child_id),
            )
    executions.record(execution_record(first.order_id, slippage_bps=2.0))
    executions.record(
        execution_record(
            first.order_id,
            report_key="upstox:U-1:FILLED:100",
            child_order_id=f"{first.order_id}-2",
            broker_id="upstox",
            slippage_bps=None,
            price_improvement_bps=None,
        )
    )
    # WHEN analytics are computed
    analytics = PostgresAnalyticsRepository(db).execution_analytics("trader-1", 30)
    by_broker = {b.broker_id: b for b in analytics.by_broker}
    # THEN each broker's fill rate is filled over routed quantity, failures included
    assert (by_broker["upstox"].filled_quantity, by_broker["upstox"].ordered_quantity) == (100, 200)
    assert by_broker["upstox"].fill_rate_percentage == 50.0
    assert by_broker["dhan"].fill_rate_percentage == 0.0
    assert by_broker["zerodha"].fill_rate_percentage == 100.0
    # AND what was never measured is unknown, not zero
    assert by_broker["upstox"].avg_slippage_bps is None
    assert by_broker["upstox"].avg_latency_ms == 140.0
    assert by_broker["dhan"].avg_latency_ms is None
    assert by_broker["dhan"].avg_price_improvement_bps is None
    assert by_broker["zerodha"].avg_slippage_bps == 2.0
    # AND the summary is 200 filled of 400 ordered
    assert analytics.summary.fill_rate_percentage == 50.0


def test_analytics_aggregate_per_user_broker_and_strategy(db: Database) -> None:
    # GIVEN two orders of trader-1 (one split, partly filled) and one of another trader
    seed_brokers(db, "zerodha", "upstox")
    orders_repo = PostgresOrderRepository(db)
    executions = PostgresExecutionRepository(db)
    first = factories.order(quantity=300)
    second = factories.order(quantity=100)
    other = factories.order(user_id="trader-2", quantity=50)
    for request, split in (
        (first, {"zerodha": 200, "upstox": 100}),
        (second, {"zerodha": 100}),
        (other, {"zerodha": 50}),
    ):
        factories.store(orders_repo, request, split)
    fills = [
        (first, "zerodha", 1, 200, 100, 1.0),
        (first, "upstox", 2, 50, 300, 3.0),
        (second, "zerodha", 1, 100, 200, 2.0),
        (other, "zerodha", 1, 50, 999, 9.0),
    ]
    with db.connection() as conn:
        for request, _, priority, filled, _, _ in fills:
            # A fill carries its average price (a V004 constraint).
            conn.execute(
                "UPDATE child_orders SET filled_quantity = %s, average_price = 2950.5 "
                "WHERE child_order_id = %s",
                (filled, f"{request.order_id}-{priority}"),
            )
    for request, broker_id, priority, filled, latency, slippage in fills:
        executions.record(
            execution_record(
                request.order_id,
                report_key=f"{request.order_id}-{priority}",
                child_order_id=f"{request.order_id}-{priority}",
                user_id=request.user_id,
                broker_id=broker_id,
                filled_quantity=filled,
                execution_latency_ms=latency,
                slippage_bps=slippage,
                charges_inr=Decimal("10.00"),
            )
        )
    # WHEN trader-1's analytics are computed
    analytics = PostgresAnalyticsRepository(db).execution_analytics("trader-1", 30)
    # THEN the summary covers trader-1's orders only
    summary = analytics.summary
    assert (summary.orders, summary.child_executions) == (2, 3)
    assert summary.fill_rate_percentage == round(100 * 350 / 400, 2)
    assert summary.avg_latency_ms == 200.0
    # AND the percentiles are nearest-rank, read from log buckets: within 2.47 %
    assert summary.p50_latency_ms == pytest.approx(200.0, rel=0.0247)
    assert summary.p95_latency_ms == pytest.approx(300.0, rel=0.0247)
    assert summary.avg_slippage_bps == 2.0
    assert summary.total_charges_inr == Decimal("30.00")
    # AND the per-broker breakdown splits the executions
    by_broker = {b.broker_id: b for b in analytics.by_broker}
    assert by_broker["zerodha"].child_executions == 2
    assert by_broker["upstox"].fill_rate_percentage == 50.0
    assert [s.strategy for s in analytics.by_strategy] == ["SMART_BALANCE"]
