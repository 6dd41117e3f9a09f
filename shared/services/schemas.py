"""The API's request and response bodies (camelCase JSON, as the specification spells them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
)

from shared.domain.errors import InvalidOrderError
from shared.domain.models import (
    SYMBOL_PATTERN,
    BrokerScore,
    Exchange,
    ExpectedExecution,
    FrozenModel,
    OrderAllocation,
    OrderRequest,
    OrderType,
    Price,
    Product,
    Quote,
    RoutingDecision,
    RoutingObjective,
    Side,
)
from shared.domain.orders import TICK_SIZE


class SmartOrderRequest(FrozenModel):
    """Body of ``POST /orders/smart`` and ``/orders/analyze`` (the spec's SmartOrderRequest)."""

    symbol: str = Field(pattern=SYMBOL_PATTERN, examples=["RELIANCE"])
    side: Side
    quantity: int = Field(
        strict=True,
        gt=0,
        le=1_000_000_000,
        description='shares; a JSON integer (`true`, `"10"`, `10.0` and `1e3` are refused)',
    )
    order_type: OrderType = OrderType.MARKET
    routing_objective: RoutingObjective = RoutingObjective.SMART_BALANCE
    exchange: Exchange = Exchange.NSE
    limit_price: Price | None = None
    trigger_price: Price | None = None
    product: Product = Product.CNC
    client_order_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$"
    )
    max_brokers: int | None = Field(default=None, strict=True, ge=1, le=16)
    quote: Quote | None = None

    @field_validator("limit_price", "trigger_price")
    @classmethod
    def _on_tick_grid(cls, price: Decimal | None) -> Decimal | None:
        if price is not None and price % TICK_SIZE:
            raise ValueError(f"must be a multiple of the tick size {TICK_SIZE} (NSE/BSE equities)")
        return price

    def to_order(self, *, order_id: str, user_id: str, client_order_id: str | None) -> OrderRequest:
        """The domain order of an authenticated trader.

        Raises
        ------
        InvalidOrderError
            When the price fields do not fit the order type (named by field).
        """
        try:
            return self._order(order_id=order_id, user_id=user_id, client_order_id=client_order_id)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ())) or _price_field(first["msg"])
            raise InvalidOrderError(field, first["msg"].removeprefix("Value error, ")) from exc

    def _order(self, *, order_id: str, user_id: str, client_order_id: str | None) -> OrderRequest:
        return OrderRequest(
            order_id=order_id,
            user_id=user_id,
            client_order_id=client_order_id,
            symbol=self.symbol,
            exchange=self.exchange,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price,
            trigger_price=self.trigger_price,
            product=self.product,
            routing_objective=self.routing_objective,
            max_brokers=self.max_brokers,
            quote=self.quote,
        )


def _price_field(message: str) -> str:
    # The order's cross-field rule names the field in its message ("limitPrice is required...").
    for field in ("limitPrice", "triggerPrice"):
        if field in message:
            return field
    return "orderType"


AllocationStatus = Literal[
    "PENDING", "PLACED", "PARTIALLY_PLACED", "REJECTED", "TIMED_OUT", "CASCADED", "FILLED"
]


class AllocationResult(FrozenModel):
    """One broker's share of the order and what became of its child orders."""

    broker_id: str
    quantity: int
    allocation_percentage: Decimal
    expected_execution_price: Decimal
    priority: int
    child_order_id: str | None = None
    child_order_ids: tuple[str, ...] = ()
    status: str = "PENDING"
    cascaded_from: str | None = None
    reason: str | None = None

    @classmethod
    def planned(cls, allocation: OrderAllocation, **placement: Any) -> AllocationResult:
        """The engine's allocation, with what placing it produced (``placement`` fields)."""
        return cls(
            broker_id=allocation.broker_id,
            quantity=allocation.quantity,
            allocation_percentage=allocation.allocation_percentage,
            expected_execution_price=allocation.expected_execution_price,
            priority=allocation.priority,
            **placement,
        )


class SkippedBroker(FrozenModel):
    """A broker a cascade passed over, and why eligibility refused it the quantity."""

    broker_id: str
    reason: str


class Cascade(FrozenModel):
    """Quantity moved from a broker that rejected or timed out to the next-ranked one."""

    from_broker_id: str
    to_broker_id: str | None
    quantity: int
    reason: str
    skipped: tuple[SkippedBroker, ...] = ()
    """Better-ranked brokers that could not take the quantity (offline, stale, rate-limited...)."""


class RoutingRecommendation(FrozenModel):
    """What ``POST /orders/analyze`` returns: the decision, without orders or broker calls."""

    strategy: RoutingObjective
    allocations: tuple[AllocationResult, ...]
    fallback_broker_ids: tuple[str, ...]
    confidence_score: float
    expected_execution: ExpectedExecution
    broker_scores: tuple[BrokerScore, ...]

    @classmethod
    def from_decision(cls, decision: RoutingDecision) -> RoutingRecommendation:
        """The recommendation of a decision."""
        return cls(
            strategy=decision.strategy,
            allocations=tuple(AllocationResult.planned(a) for a in decision.allocations),
            fallback_broker_ids=decision.fallback_broker_ids,
            confidence_score=decision.confidence_score,
            expected_execution=decision.expected_execution,
            broker_scores=decision.broker_scores,
        )


OrderStatus = Literal["ROUTED", "PARTIALLY_ROUTED", "REJECTED"]


class OrderRoutingResult(RoutingRecommendation):
    """What ``POST /orders/smart`` returns (the specification's OrderRoutingResult)."""

    order_id: str
    decision_id: int
    client_order_id: str
    status: OrderStatus
    cascades: tuple[Cascade, ...] = ()
    replayed: bool = False
    """True when this is the stored answer to an earlier request with the same key."""


# -- GET /orders/{orderId} and /health -----------------------------------------------------------


DependencyState = Literal["up", "down"]


class Dependencies(FrozenModel):
    """State of each dependency."""

    postgres: DependencyState
    redis: DependencyState


class HealthView(FrozenModel):
    """What ``GET /api/v1/health`` returns (503 with ``status: down`` when Postgres is down)."""

    status: Literal["ok", "degraded", "down"]
    dependencies: Dependencies

    @classmethod
    def of(cls, *, postgres: bool, redis: bool) -> HealthView:
        """The health of the service given which dependencies answer."""
        status = "ok" if postgres and redis else "degraded" if postgres else "down"
        return cls(
            status=status,
            dependencies=Dependencies(
                postgres="up" if postgres else "down", redis="up" if redis else "down"
            ),
        )
