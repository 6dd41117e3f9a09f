"""The broker gateway: one adapter per broker, built from the ``brokers`` table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.adapters.brokers.paper import PaperBehaviour, PaperBroker
from shared.domain.brokers import BrokerConfig
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import BrokerLookup, LookupOutcome
from shared.ports import (
    BrokerGateway,
    BrokerOrderLookup,
    BrokerRepository,
    MarketData,
    PlacementResult,
)


class BrokerGatewayRegistry:
    """:class:`shared.ports.BrokerGateway` that dispatches each child to its broker's adapter.

    Adapters are built on first use and kept for the life of the container (a paper broker's
    random generator, a real broker's HTTP session). A broker whose adapter is not available in
    this build gets a rejection, which cascades the quantity to the next-ranked broker.
    """

    def __init__(
        self,
        brokers: BrokerRepository,
        *,
        market: MarketData,
        seed: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._brokers = brokers
        self._market = market
        self._seed = seed
        self._clock = clock
        self._adapters: dict[str, BrokerGateway] = {}

    def register(self, broker_id: str, adapter: BrokerGateway) -> None:
        """Use ``adapter`` for ``broker_id`` (tests, local mode)."""
        self._adapters[broker_id] = adapter

    def _adapter(self, broker_id: str) -> BrokerGateway | None:
        adapter = self._adapters.get(broker_id)
        if adapter is None:
            config = self._brokers.get(broker_id)
            if config is None:
                return None
            adapter = self._build(config)
            if adapter is not None:
                self._adapters[broker_id] = adapter
        return adapter

    def _build(self, config: BrokerConfig) -> BrokerGateway | None:
        if config.adapter == "paper":
            return PaperBroker(
                config.broker_id,
                PaperBehaviour.model_validate(config.adapter_config),
                self._market,
                seed=self._seed,
                clock=self._clock,
            )
        return None

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        """Place ``child`` with its broker's adapter."""
        adapter = self._adapter(child.broker_id)
        if adapter is None:
            return PlacementResult(
                child_order_id=child.child_order_id,
                status=ChildOrderStatus.REJECTED,
                reason=f"no adapter available for broker {child.broker_id}",
            )
        return adapter.place(child, timeout_s=timeout_s)

    def lookup(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Ask ``child``'s broker for the order tagged with its id.

        A broker without an adapter in this build never received anything from us
        (``NOT_FOUND``); an adapter whose API has no look-up cannot tell (``UNKNOWN``).
        """
        adapter = self._adapter(child.broker_id)
        if adapter is None:
            return BrokerLookup(outcome=LookupOutcome.NOT_FOUND)
        if not isinstance(adapter, BrokerOrderLookup):
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="no order look-up")
        return adapter.lookup(child, timeout_s=timeout_s)
