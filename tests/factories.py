"""Builders of valid domain objects for tests; each takes overrides for what a test cares about."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.adapters.postgres.pool import Database
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.contracts import DomainEvent, order_routed_event
from shared.domain.execution import ProfileObservation
from shared.domain.learning import BatchLearner, Priors, declared_evidence
from shared.domain.models import (
    BrokerageRule,
    BrokerProfile,
    BrokerScore,
    ChargeBreakdown,
    ExpectedExecution,
    FeeSchedule,
    OrderAllocation,
    OrderRequest,
    OrderType,
    Quote,
    RoutingDecision,
    RoutingObjective,
    Side,
)
from shared.domain.orders import ChildOrder
from shared.ports import OrderRepository

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)

ZERODHA_FEES = FeeSchedule(
    delivery=BrokerageRule(),
    intraday=BrokerageRule(rate_pct=Decimal("0.03"), cap_inr=Decimal(20)),
    dp_charge_inr=Decimal("15.34"),
)


def broker(broker_id: str = "zerodha", **overrides: Any) -> BrokerConfig:
    values: dict[str, Any] = {
        "broker_id": broker_id,
        "display_name": broker_id.title(),
        "adapter": "paper",
        "adapter_config": {"rejectRate": 0.0},
        "webhook_auth": WebhookAuth.HMAC,
        "webhook_secret_ref": f"{broker_id}/webhook",
        "fee_schedule": ZERODHA_FEES,
        "lot_size": 1,
        "freeze_quantity": 100_000,
        "rate_limit_per_s": 10,
    }
    values.update(overrides)
    return BrokerConfig(**values)


def profile(
    broker_id: str = "zerodha", symbol: str = "RELIANCE", **overrides: Any
) -> BrokerProfile:
    values: dict[str, Any] = {
        "broker_id": broker_id,
        "symbol": symbol,
        "avg_execution_time_ms": 120.0,
        "fill_rate_percentage": 98.5,
        "price_improvement_bps": 0.5,
        "slippage_bps": 1.2,
        "current_spread_bps": 2.0,
        "order_book_depth": 50_000,
        "recent_volume": 2_000_000,
        "response_time_ms": 40.0,
        "error_rate_percentage": 0.5,
        "last_updated": NOW,
        "sample_count": 250,
        "fee_schedule": ZERODHA_FEES,
        "freeze_quantity": 100_000,
        "rate_limit_per_s": 10,
    }
    values.update(overrides)
    return BrokerProfile(**values)


def order(**overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "order_id": f"ord-{uuid.uuid4().hex[:12]}",
        "user_id": "trader-1",
        "client_order_id": f"cli-{uuid.uuid4().hex[:12]}",
        "symbol": "RELIANCE",
        "side": Side.BUY,
        "quantity": 100,
        "order_type": OrderType.MARKET,
        "routing_objective": RoutingObjective.SMART_BALANCE,
    }
    values.update(overrides)
    return OrderRequest(**values)


def decision(
    request: OrderRequest, split: dict[str, int] | None = None, **overrides: Any
) -> RoutingDecision:
    """A hand-made decision (the data layer must not depend on the engine's arithmetic)."""
    split = split or {"zerodha": request.quantity}
    allocations = tuple(
        OrderAllocation(
            broker_id=broker_id,
            quantity=qty,
            allocation_percentage=(Decimal(100) * qty / request.quantity).quantize(Decimal("0.01")),
            expected_execution_price=Decimal("2950.5000"),
            priority=i + 1,
        )
        for i, (broker_id, qty) in enumerate(split.items())
    )
    values: dict[str, Any] = {
        "order_id": request.order_id,
        "strategy": request.routing_objective,
        "allocations": allocations,
        "fallback_broker_ids": (),
        "confidence_score": 0.82,
        "expected_execution": ExpectedExecution(
            price=Decimal("2950.5000"),
            slippage_bps=1.5,
            time_ms=130.0,
            fill_probability=0.97,
            charges=ChargeBreakdown(stt=Decimal("295.05"), brokerage=Decimal(0)),
            total_cost_inr=Decimal("340.10"),
        ),
        "broker_scores": tuple(
            BrokerScore(
                broker_id=b,
                execution_speed_score=0.8,
                price_quality_score=0.7,
                reliability_score=0.9,
                liquidity_score=0.6,
                cost_score=0.95,
                total_score=0.8,
            )
            for b in split
        ),
    }
    values.update(overrides)
    return RoutingDecision(**values)


def children(request: OrderRequest, routing: RoutingDecision) -> list[ChildOrder]:
    return [
        ChildOrder(
            child_order_id=f"{request.order_id}-{a.priority}",
            order_id=request.order_id,
            user_id=request.user_id,
            broker_id=a.broker_id,
            symbol=request.symbol,
            exchange=request.exchange,
            side=request.side,
            quantity=a.quantity,
            order_type=request.order_type,
            product=request.product,
            expected_price=a.expected_execution_price,
            priority=a.priority,
        )
        for a in routing.allocations
    ]


def routed_event(request: OrderRequest) -> DomainEvent:
    return order_routed_event(request, decision(request), uuid.uuid4())


def store(
    orders: OrderRepository,
    request: OrderRequest,
    split: dict[str, int] | None = None,
    events: Sequence[DomainEvent] = (),
    request_hash: str = "a" * 64,
) -> int | None:
    """Save ``request`` routed by :func:`decision` with :func:`children`; the decision's id."""
    routing = decision(request, split)
    return orders.save_routed_order(
        request,
        request_hash=request_hash,
        decision=routing,
        children=children(request, routing),
        events=list(events),
    )


# -- the engine tests' realistic brokers and orders (with an arrival quote) ----------------------

QUOTE = Quote(bid=Decimal("2499.50"), ask=Decimal("2500.50"))
FLAT_20 = FeeSchedule(
    delivery=BrokerageRule(min_inr=Decimal(20), cap_inr=Decimal(20)),
    intraday=BrokerageRule(min_inr=Decimal(20), cap_inr=Decimal(20)),
)


def make_order(**overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {"order_id": "ord-1", "client_order_id": "cli-1", "quote": QUOTE}
    values.update(overrides)
    return order(**values)


def make_profile(broker_id: str, **overrides: Any) -> BrokerProfile:
    return profile(broker_id, **overrides)


def three_brokers() -> list[BrokerProfile]:
    """Zerodha, Upstox and Dhan as they might look for RELIANCE on a normal morning."""
    return [
        make_profile("zerodha"),
        make_profile(
            "upstox",
            avg_execution_time_ms=95.0,
            slippage_bps=1.6,
            order_book_depth=40_000,
            recent_volume=1_600_000,
            fee_schedule=FLAT_20,
        ),
        make_profile(
            "dhan",
            avg_execution_time_ms=150.0,
            fill_rate_percentage=97.5,
            recent_volume=1_400_000,
            sample_count=120,
        ),
    ]


def unpublished_events(db: Database) -> int:
    """How many outbox events still wait to be published."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM event_outbox WHERE published_at IS NULL"
        ).fetchone()
    return int(row["n"]) if row else 0


def replayed_posterior(
    broker_id: str,
    symbol: str,
    observations: list[ProfileObservation],
    *,
    alpha: float,
    before: BrokerProfile | None = None,
) -> Priors:
    """The posterior the domain learns from ``observations``, in order, for a profile that never
    learned before (``before``: its seeded figures, the prior) at a broker that learned nothing
    on any other symbol (docs/routing-engine.md, "Learning")."""
    evidence = None if before is None else declared_evidence(before, clock=0)
    learner = BatchLearner(
        discount=1 - alpha,
        brokers={broker_id: (None, 0)},
        profiles={(broker_id, symbol): (evidence, 0)},
        clocks={symbol: 0},
    )
    for observation in observations:
        learner.learn(broker_id, symbol, observation)
    return learner.profile_posterior(broker_id, symbol)
