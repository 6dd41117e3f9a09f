"""Paper brokers: simulated placement and fills from hidden "true" characteristics.

A paper broker behaves like a real one seen from outside: it takes some milliseconds to answer,
rejects some orders, times out on some, fills most fully and some partially (the rest is then
cancelled), at prices that slip by a characteristic amount. Its postbacks come back as
:class:`ExecutionReport` objects, cumulative like Kite's, which the routing service turns into
``ExecutionReported`` events on the same path as a real broker's webhooks. The characteristics
are hidden from the router, which must learn them from the reports: that is what the routing-
quality simulation measures. Randomness comes from a seeded generator per broker, so a run can
be replayed. The truth can change while the broker runs (:meth:`PaperBroker.set_behaviour`, or an
edit of ``brokers.adapter_config`` that the gateway registry re-reads): that is how the routing-
quality benchmark degrades and recovers a broker (``docs/quality.md``).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import Field

from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.models import FrozenModel
from shared.domain.orders import TICK_SIZE, ChildOrder, ChildOrderStatus, round_to_tick
from shared.domain.settlement import BrokerLookup, LookupOutcome
from shared.ports import MarketData, PlacementResult

_CHILD_STATUS = {
    ExecutionStatus.OPEN: ChildOrderStatus.PLACED,
    ExecutionStatus.PARTIALLY_FILLED: ChildOrderStatus.PARTIALLY_FILLED,
    ExecutionStatus.FILLED: ChildOrderStatus.FILLED,
    ExecutionStatus.CANCELLED: ChildOrderStatus.CANCELLED,
    ExecutionStatus.REJECTED: ChildOrderStatus.REJECTED,
}

BOOK_SIZE = 10_000
"""Orders a paper broker remembers for look-ups (the oldest are forgotten first)."""


class PaperBehaviour(FrozenModel):
    """The hidden truth of one paper broker (stored in ``brokers.adapter_config``)."""

    ack_latency_ms: float = Field(default=40.0, ge=0)
    ack_jitter_ms: float = Field(default=10.0, ge=0)
    fill_latency_ms: float = Field(default=150.0, ge=0)
    reject_rate: float = Field(default=0.01, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    partial_fill_rate: float = Field(default=0.05, ge=0, le=1)
    slippage_bps_mean: float = 1.0
    slippage_bps_std: float = Field(default=1.0, ge=0)
    simulate_delay: bool = False
    """Sleep for the acknowledgement latency (local mode); benchmarks keep it off."""


@dataclass(frozen=True, slots=True)
class _Draw:
    """The random draws of one placement (taken in one go, so seeded runs repeat exactly)."""

    sequence: int
    ack_ms: float
    outcome: float
    partial: float
    fraction: float
    slippage_bps: float


class PaperBroker:
    """One simulated broker: the adapter behind ``brokers.adapter = 'paper'``."""

    def __init__(
        self,
        broker_id: str,
        behaviour: PaperBehaviour,
        market: MarketData,
        *,
        seed: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.broker_id = broker_id
        self._behaviour = behaviour
        self._market = market
        self._clock = clock
        # One generator per broker, seeded from the broker id too, so adding a broker does not
        # change the draws of the others; the lock keeps parallel placements deterministic
        # per call order.
        digest = hashlib.sha256(f"{seed}:{broker_id}".encode()).digest()
        self._rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - a replayable simulation
        self._lock = threading.Lock()
        self._sequence = 0
        # Broker order ids must be unique across processes (Lambda containers, restarts of local
        # mode on kept data): a per-instance random prefix, then a sequence.
        self._instance = uuid.uuid4().hex[:8].upper()
        # The order book, by our child order id (a real broker's tag), for look-ups; bounded,
        # and gone with the process, like everything a paper broker holds.
        self._book: OrderedDict[str, PlacementResult] = OrderedDict()
        # Health probes draw from their own generator: probing must not change the outcomes
        # of the orders a replay places.
        self._probe_rng = random.Random(int.from_bytes(digest[8:16], "big"))  # noqa: S311 - a replayable simulation

    @property
    def behaviour(self) -> PaperBehaviour:
        """The hidden truth this broker simulates now."""
        return self._behaviour

    def set_behaviour(self, behaviour: PaperBehaviour) -> None:
        """Change the hidden truth from the next placement on.

        The random generator, the sequence and the order book are kept: a broker whose
        behaviour changes is the same broker, and a replay with the same changes at the same
        points draws the same outcomes.
        """
        with self._lock:
            self._behaviour = behaviour

    def probe(self, *, timeout_s: float) -> bool:
        """A health probe (``BrokerHealthProbe``): answered unless it draws a timeout.

        It times out as often as a placement does (``timeout_rate``, or an acknowledgement
        later than ``timeout_s``): a broker that is down (``timeout_rate`` 1) never answers.
        """
        with self._lock:
            b = self._behaviour
            outcome = self._probe_rng.random()
            ack_ms = max(0.0, self._probe_rng.gauss(b.ack_latency_ms, b.ack_jitter_ms))
        return outcome >= b.timeout_rate and ack_ms / 1000 <= timeout_s

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        """Simulate placing ``child``; return the acknowledgement and the postbacks."""
        result = self._place(child, timeout_s=timeout_s)
        if result.broker_order_id is not None:
            with self._lock:
                self._book[child.child_order_id] = result
                while len(self._book) > BOOK_SIZE:
                    self._book.popitem(last=False)
        return result

    def lookup(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """The order this broker holds for ``child``: ``NOT_FOUND`` when it never got it."""
        with self._lock:
            held = self._book.get(child.child_order_id)
        if held is None:
            return BrokerLookup(outcome=LookupOutcome.NOT_FOUND)
        return BrokerLookup(
            outcome=LookupOutcome.FOUND,
            status=held.status,
            broker_order_id=held.broker_order_id,
            reason=held.reason,
            filled_quantity=max((r.filled_quantity for r in held.reports), default=0),
            reports=held.reports,
        )

    def cancel_child(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Cancel what a timed-out ``child`` left here (``BrokerOrderCanceller``).

        A paper order is settled as it is placed, and one that timed out was never booked: the
        answer is the order's final state, or ``NOT_FOUND``.
        """
        found = self.lookup(child, timeout_s=timeout_s)
        if not found.reports:
            return found
        return found.model_copy(update={"status": _CHILD_STATUS[found.reports[-1].status]})

    def poll(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """The order's simulated postbacks, as its history (``BrokerOrderPoller``)."""
        return self.lookup(child, timeout_s=timeout_s)

    def _place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        b, draw = self._draw()
        if draw.outcome < b.timeout_rate or draw.ack_ms / 1000 > timeout_s:
            if b.simulate_delay:
                time.sleep(timeout_s)
            return PlacementResult(
                child_order_id=child.child_order_id,
                status=ChildOrderStatus.TIMED_OUT,
                reason=f"no acknowledgement within {timeout_s * 1000:.0f} ms",
                response_time_ms=timeout_s * 1000,
            )
        if b.simulate_delay:
            time.sleep(draw.ack_ms / 1000)
        placed_at = self._clock()
        broker_order_id = f"{self.broker_id.upper()}-{self._instance}-{draw.sequence:06d}"
        if draw.outcome < b.timeout_rate + b.reject_rate:
            reason = "RMS: order rejected by the broker's risk checks"
            report = self._report(
                child,
                broker_order_id=broker_order_id,
                status=ExecutionStatus.REJECTED,
                filled=0,
                price=None,
                at=placed_at,
                message=reason,
            )
            return PlacementResult(
                child_order_id=child.child_order_id,
                status=ChildOrderStatus.REJECTED,
                broker_order_id=broker_order_id,
                reason=reason,
                response_time_ms=draw.ack_ms,
                reports=(report,),
            )
        return PlacementResult(
            child_order_id=child.child_order_id,
            status=ChildOrderStatus.PLACED,
            broker_order_id=broker_order_id,
            response_time_ms=draw.ack_ms,
            reports=self._fills(child, b, draw, broker_order_id, placed_at),
        )

    def _draw(self) -> tuple[PaperBehaviour, _Draw]:
        """The behaviour and random draws of one placement, taken together under the lock."""
        with self._lock:
            b = self._behaviour
            self._sequence += 1
            return b, _Draw(
                sequence=self._sequence,
                ack_ms=max(0.0, self._rng.gauss(b.ack_latency_ms, b.ack_jitter_ms)),
                outcome=self._rng.random(),
                partial=self._rng.random(),
                fraction=self._rng.uniform(0.3, 0.9),
                slippage_bps=self._rng.gauss(b.slippage_bps_mean, b.slippage_bps_std),
            )

    def _fills(
        self,
        child: ChildOrder,
        b: PaperBehaviour,
        draw: _Draw,
        broker_order_id: str,
        placed_at: datetime,
    ) -> tuple[ExecutionReport, ...]:
        """A full fill, or a partial fill whose remainder is cancelled."""
        price = self._fill_price(child, draw.slippage_bps)
        filled_at = placed_at + timedelta(milliseconds=draw.ack_ms + b.fill_latency_ms)
        if draw.partial < b.partial_fill_rate and child.quantity > 1:
            filled = max(1, int(child.quantity * draw.fraction))
            cancelled_at = filled_at + timedelta(milliseconds=b.fill_latency_ms)
            return (
                self._report(
                    child,
                    broker_order_id=broker_order_id,
                    status=ExecutionStatus.PARTIALLY_FILLED,
                    filled=filled,
                    price=price,
                    at=filled_at,
                ),
                self._report(
                    child,
                    broker_order_id=broker_order_id,
                    status=ExecutionStatus.CANCELLED,
                    filled=filled,
                    price=price,
                    at=cancelled_at,
                    message="remaining quantity cancelled: no liquidity at the limit",
                ),
            )
        return (
            self._report(
                child,
                broker_order_id=broker_order_id,
                status=ExecutionStatus.FILLED,
                filled=child.quantity,
                price=price,
                at=filled_at,
            ),
        )

    def _fill_price(self, child: ChildOrder, slippage_bps: float) -> Decimal:
        quote = self._market.quote(child.symbol)
        touch = None
        if quote is not None:
            touch = quote.ask if child.side.sign > 0 else quote.bid
        reference = touch or child.expected_price or child.limit_price or Decimal(100)
        price = reference * (1 + Decimal(child.side.sign) * Decimal(str(slippage_bps)) / 10_000)
        if child.limit_price is not None:
            # A limit order never fills through its limit.
            price = (
                min(price, child.limit_price)
                if child.side.sign > 0
                else max(price, child.limit_price)
            )
        return max(TICK_SIZE, round_to_tick(price))

    def _report(
        self,
        child: ChildOrder,
        *,
        broker_order_id: str,
        status: ExecutionStatus,
        filled: int,
        price: Decimal | None,
        at: datetime,
        message: str | None = None,
    ) -> ExecutionReport:
        return ExecutionReport(
            broker_id=self.broker_id,
            broker_order_id=broker_order_id,
            child_order_id=child.child_order_id,
            status=status,
            quantity=child.quantity,
            filled_quantity=filled,
            average_price=price if filled else None,
            symbol=child.symbol,
            exchange=child.exchange,
            side=child.side,
            event_time=at,
            status_message=message,
        )
