"""Domain models of the order router.

Every model is an immutable pydantic v2 model. Python attribute names are snake_case; on the wire
(API responses, events) they serialise as camelCase through ``by_alias=True``, as the original
specification spells them (``allocationPercentage``, ``confidenceScore``, ``routingObjective``).

Prices and money are ``Decimal`` at the edges (requests, decisions, charges); execution statistics
on a profile (averages in ms, bps, %) are floats because they are estimates, not amounts.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9&_\-]{0,19}$"
"""NSE/BSE trading symbols: upper case, digits, ``&``, ``-`` and ``_``, at most 20 characters
(the specification's ``VARCHAR(20)``)."""

BROKER_ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,49}$"
"""Broker ids are lower-case slugs, at most 50 characters (the specification's ``VARCHAR(50)``)."""


class FrozenModel(BaseModel):
    """Base of every domain model: immutable, camelCase aliases, populated by field name too."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )


class Side(StrEnum):
    """Order side; ``sign`` is +1 for a buy and -1 for a sell (docs/architecture.md §5)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL."""
        return 1 if self is Side.BUY else -1


class Exchange(StrEnum):
    """Indian cash-market exchanges."""

    NSE = "NSE"
    BSE = "BSE"


class OrderType(StrEnum):
    """Order types as Indian brokers name them (SL = stop-loss limit, SL-M = stop-loss market)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_MARKET = "STOP_LOSS_MARKET"


class Product(StrEnum):
    """CNC = delivery, MIS = intraday; charges differ by product."""

    CNC = "CNC"
    MIS = "MIS"


class RoutingObjective(StrEnum):
    """What the trader asks the router to optimise."""

    BEST_PRICE = "BEST_PRICE"
    FASTEST_EXECUTION = "FASTEST_EXECUTION"
    LOWEST_COST = "LOWEST_COST"
    SMART_BALANCE = "SMART_BALANCE"


class BrokerStatus(StrEnum):
    """The specification's ``BrokerStatus``."""

    AVAILABLE = "AVAILABLE"
    BUSY = "BUSY"
    MAINTENANCE = "MAINTENANCE"
    OFFLINE = "OFFLINE"
    ERROR = "ERROR"
    SUSPENDED = "SUSPENDED"
    """Not in the specification: an operator suspended the broker (the admin API)."""


MAX_PRICE = Decimal(1_000_000)
"""Highest price an order or quote may carry, in INR. The columns (``DECIMAL(12,4)``) hold up to
99,999,999.9999, but expected prices move by slippage and impact from it; the dearest NSE share
trades near INR 1.5 lakh, so ten lakh leaves room for both."""

MAX_ORDER_VALUE_INR = Decimal(5_000_000_000)
"""Largest order value (quantity x price) the router accepts: INR 500 crore. Expected charges
and costs derive from it and are stored as ``DECIMAL(14,4)`` (below 10^10): they would have to
exceed twice the order's value to overflow."""

Price = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, max_digits=12, decimal_places=4)]
"""A price in INR: positive, at most :data:`MAX_PRICE`, with the columns' scale of 4 (the
specification's ``DECIMAL(12,4)``). JSON strings and numbers are accepted, booleans are not."""


class Quote(FrozenModel):
    """Arrival quote of the symbol when the order was received (optional)."""

    bid: Price | None = None
    ask: Price | None = None
    last: Price | None = None

    @model_validator(mode="after")
    def _bid_not_above_ask(self) -> Quote:
        if self.bid is not None and self.ask is not None and self.bid > self.ask:
            raise ValueError("bid must not be above ask")
        return self

    @property
    def mid(self) -> Decimal | None:
        """Mid of bid and ask, else the last price, else ``None``."""
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last


class OrderRequest(FrozenModel):
    """An order as the router sees it, after the API has authenticated the trader."""

    order_id: str = Field(min_length=1, max_length=50)
    user_id: str = Field(min_length=1, max_length=50)
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    exchange: Exchange = Exchange.NSE
    side: Side
    quantity: int = Field(gt=0, le=1_000_000_000)
    order_type: OrderType
    limit_price: Price | None = None
    trigger_price: Price | None = None
    product: Product = Product.CNC
    routing_objective: RoutingObjective = RoutingObjective.SMART_BALANCE
    max_brokers: int | None = Field(default=None, ge=1, le=16)
    quote: Quote | None = None

    @model_validator(mode="after")
    def _price_fields_match_order_type(self) -> OrderRequest:
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LOSS)
        needs_trigger = self.order_type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_MARKET)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"limitPrice is required for {self.order_type.value} orders")
        if not needs_limit and self.limit_price is not None:
            raise ValueError(f"limitPrice is not allowed for {self.order_type.value} orders")
        if needs_trigger and self.trigger_price is None:
            raise ValueError(f"triggerPrice is required for {self.order_type.value} orders")
        if not needs_trigger and self.trigger_price is not None:
            raise ValueError(f"triggerPrice is not allowed for {self.order_type.value} orders")
        return self


class BrokerageRule(FrozenModel):
    """Brokerage per executed order: ``clamp(rate_pct% x turnover, min_inr, cap_inr)``.

    Zero brokerage is ``rate_pct=0, min_inr=0``; a flat INR 20 an order is ``min_inr=cap_inr=20``;
    "min(INR 20, 0.03 %)" is ``rate_pct=0.03, cap_inr=20``.
    """

    rate_pct: Decimal = Field(default=Decimal(0), ge=0, le=5)
    min_inr: Decimal = Field(default=Decimal(0), ge=0)
    cap_inr: Decimal | None = Field(default=None, ge=0)


class FeeSchedule(FrozenModel):
    """A broker's own charges, per product. Statutory charges are the same for every broker."""

    delivery: BrokerageRule = BrokerageRule()
    intraday: BrokerageRule = BrokerageRule()
    dp_charge_inr: Decimal = Field(default=Decimal(0), ge=0)
    """Depository charge per scrip on a delivery sell (e.g. INR 15.34 at Zerodha)."""

    def rule_for(self, product: Product) -> BrokerageRule:
        """The brokerage rule of a product."""
        return self.delivery if product is Product.CNC else self.intraday


class Belief(FrozenModel):
    """How sure the router is of one learned factor (docs/routing-engine.md, "Learning").

    ``weight`` is the effective number of observations behind the estimate, prior included and
    older evidence discounted; ``sd`` is the standard deviation of the estimate itself (of the
    mean, in the factor's unit: percentage points for a rate, bps, ms).
    """

    weight: float = Field(default=0.0, ge=0)
    sd: float = Field(default=0.0, ge=0)


class ProfileUncertainty(FrozenModel):
    """The beliefs behind a profile's learned averages, for exploration and confidence.

    ``clock`` is the symbol's outcome count (every broker's ``sample_count`` summed) when the
    profile last learned: evidence not refreshed since widens as the symbol's clock runs on.
    ``pooled`` says the profile was made from its broker's broker-wide posterior (a symbol the
    broker has no evidence for yet) or from the day-one priors.
    """

    clock: int = Field(default=0, ge=0)
    fill_rate: Belief = Belief()
    error_rate: Belief = Belief()
    slippage: Belief = Belief()
    price_improvement: Belief = Belief()
    execution_time: Belief = Belief()
    response_time: Belief = Belief()
    pooled: bool = False


class BrokerProfile(FrozenModel):
    """Everything the engine knows of one broker for one symbol.

    The first block is the specification's ``BrokerExecutionProfile`` (table
    ``broker_execution_profiles``); the second is broker-level configuration from our ``brokers``
    table joined in by the repository.
    """

    broker_id: str = Field(pattern=BROKER_ID_PATTERN)
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    avg_execution_time_ms: float = Field(ge=0)
    fill_rate_percentage: float = Field(ge=0, le=100)
    price_improvement_bps: float = 0.0
    slippage_bps: float = 0.0
    current_spread_bps: float = Field(default=5.0, ge=0)
    order_book_depth: int = Field(default=0, ge=0)
    """Shares available near the touch (both sides summed, as the broker's feed reports it)."""
    recent_volume: int = Field(default=0, ge=0)
    """Shares traded in the recent window (e.g. the last 5 minutes)."""
    supported_order_types: frozenset[OrderType] = frozenset(OrderType)
    max_order_size: int | None = Field(default=None, gt=0)
    min_order_size: int | None = Field(default=None, gt=0)
    status: BrokerStatus = BrokerStatus.AVAILABLE
    response_time_ms: float = Field(default=0.0, ge=0)
    error_rate_percentage: float = Field(default=0.0, ge=0, le=100)
    last_updated: datetime

    sample_count: int = Field(default=0, ge=0)
    lot_size: int = Field(default=1, ge=1)
    freeze_quantity: int | None = Field(default=None, gt=0)
    """Largest quantity the exchange accepts in one order; larger children are sliced."""
    rate_limit_per_s: int | None = Field(default=None, gt=0)
    fee_schedule: FeeSchedule = FeeSchedule()
    volatility_bps: float = Field(default=150.0, ge=0)
    """Daily volatility of the symbol in bps: the sigma of the square-root impact law."""
    last_price: float | None = Field(default=None, gt=0)
    """Last traded price seen for the symbol: the reference price when an order has no quote."""
    market_updated_at: datetime | None = None
    """When the market figures (spread, depth, volume, last price) were last taken from a fresh
    quote; ``None`` for figures never refreshed (seeded or declared), which are not aged."""
    uncertainty: ProfileUncertainty | None = None
    """The learned factors' beliefs (weights and spreads); ``None`` for a profile nothing was
    ever learned for (declared or seeded figures): the engine then neither explores it nor
    counts more than its ``sample_count`` towards confidence."""


class ChargeBreakdown(FrozenModel):
    """Charges of an execution in INR, itemised as on an Indian contract note."""

    brokerage: Decimal = Decimal(0)
    stt: Decimal = Decimal(0)
    exchange_txn: Decimal = Decimal(0)
    sebi: Decimal = Decimal(0)
    stamp_duty: Decimal = Decimal(0)
    gst: Decimal = Decimal(0)
    dp: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        """Sum of every item."""
        return (
            self.brokerage
            + self.stt
            + self.exchange_txn
            + self.sebi
            + self.stamp_duty
            + self.gst
            + self.dp
        )


class BrokerScore(FrozenModel):
    """The five factor scores of one broker for one order, each in [0, 1], and the weighted total.

    An excluded broker keeps its scores (for explanation) and carries ``exclusion_reason``.
    """

    broker_id: str
    execution_speed_score: float = Field(ge=0, le=1)
    price_quality_score: float = Field(ge=0, le=1)
    reliability_score: float = Field(ge=0, le=1)
    liquidity_score: float = Field(ge=0, le=1)
    cost_score: float = Field(ge=0, le=1)
    total_score: float = Field(ge=0, le=1)
    exclusion_reason: str | None = None

    @property
    def eligible(self) -> bool:
        """True when the broker may receive a child order."""
        return self.exclusion_reason is None


class OrderAllocation(FrozenModel):
    """One broker's share of an order. ``allocation_percentage`` derives from ``quantity``."""

    broker_id: str
    quantity: int = Field(gt=0)
    allocation_percentage: Decimal = Field(gt=0, le=100, decimal_places=2)
    expected_execution_price: Decimal
    priority: int = Field(ge=1)
    slices: int = Field(default=1, ge=1)
    """Child orders needed to stay under the broker's freeze quantity."""
    expected_cost_inr: Decimal = Decimal(0)
    """Expected total cost of this child in INR (charges + spread + impact + non-fill penalty)."""


class ExpectedExecution(FrozenModel):
    """What the router expects the whole order to achieve."""

    price: Decimal
    slippage_bps: float
    time_ms: float = Field(ge=0)
    fill_probability: float = Field(ge=0, le=1)
    charges: ChargeBreakdown
    total_cost_inr: Decimal
    """Expected money cost in INR: charges (as on the contract notes) + half spread + square-root
    impact + historical slippage net of price improvement + the expected non-fill penalty."""
    objective_inr: Decimal = Decimal(0)
    """What the splitter minimised: the objective's valuation of the plan (market cost, charges
    at unrounded rates, per-child cost, value of time; see docs/routing-engine.md). Compare plans
    with it."""


class RoutingDecision(FrozenModel):
    """The engine's answer for one order: pure data, persisted as the audit trail."""

    order_id: str
    strategy: RoutingObjective
    allocations: tuple[OrderAllocation, ...]
    fallback_broker_ids: tuple[str, ...] = ()
    """Eligible brokers not allocated, best first: where a rejected child cascades."""
    confidence_score: float = Field(ge=0, le=1)
    expected_execution: ExpectedExecution
    broker_scores: tuple[BrokerScore, ...]
