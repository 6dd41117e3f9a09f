"""Execution analytics of one trader over a window of days."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from shared.domain.models import FrozenModel


class ExecutionStats(FrozenModel):
    """Execution quality over a set of child executions; zeros when the set is empty."""

    orders: int = 0
    child_executions: int = 0
    filled_quantity: int = 0
    ordered_quantity: int = 0
    fill_rate_percentage: float = 0.0
    avg_latency_ms: float = 0.0
    p50_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0
    avg_slippage_bps: float = 0.0
    avg_price_improvement_bps: float = 0.0
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
