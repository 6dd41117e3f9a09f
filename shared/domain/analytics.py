"""Execution analytics of one trader over a window of days."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from shared.domain.models import FrozenModel


class ExecutionStats(FrozenModel):
    """Execution quality over a set of child executions.

    Counts and sums are 0 for an empty set; a rate or an average with nothing to average
    (no quantity routed, no execution measured) is ``None`` (JSON ``null``), never 0.0, which
    would read as a measured perfect latency or zero slippage.
    """

    orders: int = 0
    child_executions: int = 0
    filled_quantity: int = 0
    ordered_quantity: int = 0
    """Quantity routed: for a broker, every child sent to it, rejected and timed out too."""
    fill_rate_percentage: float | None = None
    """``100 x filled / routed`` (quantity-weighted)."""
    avg_latency_ms: float | None = None
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    avg_slippage_bps: float | None = None
    avg_price_improvement_bps: float | None = None
    total_charges_inr: Decimal = Decimal(0)


class BrokerBreakdown(ExecutionStats):
    """Stats of one broker."""

    broker_id: str


class StrategyBreakdown(ExecutionStats):
    """Stats of one routing strategy."""

    strategy: str


class ExecutionAnalytics(FrozenModel):
    """What ``GET /analytics/execution?days=N`` returns."""

    user_id: str
    days: int = Field(ge=1, le=365)
    summary: ExecutionStats
    by_broker: tuple[BrokerBreakdown, ...] = ()
    by_strategy: tuple[StrategyBreakdown, ...] = ()
