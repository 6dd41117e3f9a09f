"""Builders shared by the engine tests: realistic brokers and orders with an arrival quote."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.models import (
    BrokerageRule,
    BrokerProfile,
    FeeSchedule,
    OrderRequest,
    Quote,
)
from tests import factories

NOW = factories.NOW
QUOTE = Quote(bid=Decimal("2499.50"), ask=Decimal("2500.50"))
FLAT_20 = FeeSchedule(
    delivery=BrokerageRule(min_inr=Decimal(20), cap_inr=Decimal(20)),
    intraday=BrokerageRule(min_inr=Decimal(20), cap_inr=Decimal(20)),
)


def make_order(**overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {"order_id": "ord-1", "client_order_id": "cli-1", "quote": QUOTE}
    values.update(overrides)
    return factories.order(**values)


def make_profile(broker_id: str, **overrides: Any) -> BrokerProfile:
    return factories.profile(broker_id, **overrides)


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
