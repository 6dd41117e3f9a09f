"""The broker gateway: one adapter per broker, built from the ``brokers`` table."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from shared.adapters.brokers.paper import PaperBehaviour, PaperBroker
from shared.domain.broker_links import LINKED_ADAPTERS
from shared.domain.brokers import BrokerConfig
from shared.domain.errors import DataUnavailableError
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import BrokerLookup, LookupOutcome
from shared.ports import (
    BrokerGateway,
    BrokerHealthProbe,
    BrokerOrderCanceller,
    BrokerOrderLookup,
    BrokerOrderPoller,
    BrokerRepository,
    MarketData,
    PlacementResult,
    SecretStore,
    TraderAccounts,
)

REAL_ADAPTERS = LINKED_ADAPTERS
"""``brokers.adapter`` values served by a real broker's order API (see ``docs/brokers.md``)."""

PAPER_CONFIG_TTL_S = 5.0
"""How long a paper broker's behaviour is used before ``brokers.adapter_config`` is read again."""


class BrokerGatewayRegistry:
    """:class:`shared.ports.BrokerGateway` that dispatches each child to its broker's adapter.

    Adapters are built on first use and kept for the life of the container (a paper broker's
    random generator, a real broker's HTTP connection pool). ``kite``, ``upstox`` and ``dhan``
    brokers are built from their ``adapter_config`` (:class:`RealBrokerSettings`: base URL,
    instrument maps), each child going out under its trader's connection from ``accounts``
    (or, without them, a platform account from ``secrets``). A broker whose
    adapter is not available (unknown adapter, unusable configuration, no secret store) gets a
    rejection with the reason, which cascades the quantity to the next-ranked broker.

    A paper broker's behaviour (its hidden truth) is re-read from ``brokers.adapter_config`` at
    most every ``paper_config_ttl_s`` seconds, and at once by :meth:`reload`, so an operator or a
    simulation changes it without a restart; its random generator and order book are kept. A
    real broker's settings still take a new container (its HTTP client holds them).
    """

    def __init__(
        self,
        brokers: BrokerRepository,
        *,
        market: MarketData,
        seed: int,
        clock: Callable[[], datetime],
        secrets: SecretStore | None = None,
        accounts: TraderAccounts | None = None,
        paper_config_ttl_s: float = PAPER_CONFIG_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._brokers = brokers
        self._secrets = secrets
        self._accounts = accounts
        self._market = market
        self._seed = seed
        self._clock = clock
        self._adapters: dict[str, BrokerGateway] = {}
        self._paper_ttl_s = paper_config_ttl_s
        self._monotonic = monotonic
        # When each paper broker built from the table last read its configuration.
        self._paper_read_at: dict[str, float] = {}

    def register(self, broker_id: str, adapter: BrokerGateway) -> None:
        """Use ``adapter`` for ``broker_id`` (tests, local mode)."""
        self._adapters[broker_id] = adapter

    def reload(self, broker_id: str) -> None:
        """Read ``broker_id``'s paper behaviour from the ``brokers`` table now.

        A paper broker whose row is gone, is no longer a paper broker or has an unusable
        behaviour is dropped, so its next child is rebuilt from the row or rejected with the
        reason. Adapters of other kinds are left as they are.

        Raises
        ------
        DataUnavailableError
            When the table cannot be read.
        """
        adapter = self._adapters.get(broker_id)
        if not isinstance(adapter, PaperBroker) or broker_id not in self._paper_read_at:
            return
        config = self._brokers.get(broker_id)
        self._paper_read_at[broker_id] = self._monotonic()
        behaviour = _paper_behaviour(config) if config and config.adapter == "paper" else None
        if isinstance(behaviour, PaperBehaviour):
            adapter.set_behaviour(behaviour)
        else:
            del self._adapters[broker_id]
            del self._paper_read_at[broker_id]

    def _adapter(self, broker_id: str) -> BrokerGateway | str:
        adapter = self._adapters.get(broker_id)
        read_at = self._paper_read_at.get(broker_id)
        if read_at is not None and self._monotonic() - read_at >= self._paper_ttl_s:
            try:
                self.reload(broker_id)
            except DataUnavailableError:
                # The behaviour it had is still the best guess; the next placement tries again.
                self._paper_read_at[broker_id] = self._monotonic()
            adapter = self._adapters.get(broker_id)
        if adapter is None:
            config = self._brokers.get(broker_id)
            if config is None:
                return f"no adapter available for broker {broker_id}: unknown broker"
            built = self._build(config)
            if isinstance(built, str):
                return f"no adapter available for broker {broker_id}: {built}"
            adapter = self._adapters[broker_id] = built
            if isinstance(built, PaperBroker):
                self._paper_read_at[broker_id] = self._monotonic()
        return adapter

    def _build(self, config: BrokerConfig) -> BrokerGateway | str:
        if config.adapter == "paper":
            behaviour = _paper_behaviour(config)
            if isinstance(behaviour, str):
                return behaviour
            return PaperBroker(
                config.broker_id, behaviour, self._market, seed=self._seed, clock=self._clock
            )
        if config.adapter in REAL_ADAPTERS:
            # Imported here: the HTTP clients stay out of the cold start of a paper-only build.
            from shared.adapters.brokers.catalog import build_gateway

            return build_gateway(config, self._secrets, self._accounts)
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

    def probe(self, broker_id: str, *, timeout_s: float) -> bool | None:
        """Whether ``broker_id`` answers a health probe (``BrokerHealth``).

        ``None`` when it cannot tell: no adapter in this build, or an adapter without a probe.
        """
        adapter = self._adapter(broker_id)
        if isinstance(adapter, str) or not isinstance(adapter, BrokerHealthProbe):
            return None
        return adapter.probe(timeout_s=timeout_s)

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

    def cancel_child(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Cancel what a timed-out ``child`` left at its broker (``BrokerOrderCanceller``).

        A broker without an adapter never received anything (``NOT_FOUND``); an adapter that
        cannot cancel cannot confirm anything (``UNKNOWN``: the quantity is held).
        """
        adapter = self._adapter(child.broker_id)
        if isinstance(adapter, str):
            return BrokerLookup(outcome=LookupOutcome.NOT_FOUND, reason=adapter)
        if not isinstance(adapter, BrokerOrderCanceller):
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="no order cancel")
        return adapter.cancel_child(child, timeout_s=timeout_s)

    def poll(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Read ``child``'s order history at its broker (``BrokerOrderPoller``)."""
        adapter = self._adapter(child.broker_id)
        if isinstance(adapter, str):
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason=adapter)
        if not isinstance(adapter, BrokerOrderPoller):
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason="no order history")
        return adapter.poll(child, timeout_s=timeout_s)


def _paper_behaviour(config: BrokerConfig) -> PaperBehaviour | str:
    """A paper broker's behaviour, or why its ``adapter_config`` is unusable."""
    try:
        return PaperBehaviour.model_validate(config.adapter_config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "adapter_config"
        return f"adapter_config.{where}: {first['msg']}"
