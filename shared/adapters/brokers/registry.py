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
    SecretStore,
)

REAL_ADAPTERS = frozenset({"kite", "upstox", "dhan"})
"""``brokers.adapter`` values served by a real broker's order API (see ``docs/brokers.md``)."""


class BrokerGatewayRegistry:
    """:class:`shared.ports.BrokerGateway` that dispatches each child to its broker's adapter.

    Adapters are built on first use and kept for the life of the container (a paper broker's
    random generator, a real broker's HTTP connection pool). ``kite``, ``upstox`` and ``dhan``
    brokers are built from their ``adapter_config`` (:class:`RealBrokerSettings`: base URL,
    credentials reference, instrument maps) with credentials from ``secrets``. A broker whose
    adapter is not available (unknown adapter, unusable configuration, no secret store) gets a
    rejection with the reason, which cascades the quantity to the next-ranked broker.
    """

    def __init__(
        self,
        brokers: BrokerRepository,
        *,
        market: MarketData,
        seed: int,
        clock: Callable[[], datetime],
        secrets: SecretStore | None = None,
    ) -> None:
        self._brokers = brokers
        self._secrets = secrets
        self._market = market
        self._seed = seed
        self._clock = clock
        self._adapters: dict[str, BrokerGateway] = {}

    def register(self, broker_id: str, adapter: BrokerGateway) -> None:
        """Use ``adapter`` for ``broker_id`` (tests, local mode)."""
        self._adapters[broker_id] = adapter

    def _adapter(self, broker_id: str) -> BrokerGateway | str:
        adapter = self._adapters.get(broker_id)
        if adapter is None:
            config = self._brokers.get(broker_id)
            if config is None:
                return f"no adapter available for broker {broker_id}: unknown broker"
            built = self._build(config)
            if isinstance(built, str):
                return f"no adapter available for broker {broker_id}: {built}"
            adapter = self._adapters[broker_id] = built
        return adapter

    def _build(self, config: BrokerConfig) -> BrokerGateway | str:
        if config.adapter == "paper":
            return PaperBroker(
                config.broker_id,
                PaperBehaviour.model_validate(config.adapter_config),
                self._market,
                seed=self._seed,
                clock=self._clock,
            )
        if config.adapter in REAL_ADAPTERS:
            if self._secrets is None:
                return "no secret store for broker credentials"
            # Imported here: the HTTP clients stay out of the cold start of a paper-only build.
            from shared.adapters.brokers.catalog import build_gateway

            return build_gateway(config, self._secrets)
        return f"adapter {config.adapter!r} is not implemented"

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        """Place ``child`` with its broker's adapter."""
        adapter = self._adapter(child.broker_id)
        if isinstance(adapter, str):
            return PlacementResult(
                child_order_id=child.child_order_id,
                status=ChildOrderStatus.REJECTED,
                reason=adapter,
            )
        return adapter.place(child, timeout_s=timeout_s)

    def lookup(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Ask ``child``'s broker for the order tagged with its id.

        A broker without an adapter in this build never received anything from us
        (``NOT_FOUND``); an adapter whose API has no look-up cannot tell (``UNKNOWN``).
        """
        adapter = self._adapter(child.broker_id)
        if isinstance(adapter, str):
            return BrokerLookup(outcome=LookupOutcome.NOT_FOUND, reason=adapter)
        if not isinstance(adapter, BrokerOrderLookup):
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="no order look-up")
        return adapter.lookup(child, timeout_s=timeout_s)
