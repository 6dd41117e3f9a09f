"""A paper broker's true behaviour changes while it runs (``brokers.adapter_config``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.adapters.brokers.paper import PaperBehaviour, PaperBroker
from shared.adapters.brokers.registry import BrokerGatewayRegistry
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.errors import DataUnavailableError
from shared.domain.models import Exchange, OrderType, Product, Quote, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus

ACCEPTS: dict[str, object] = {"rejectRate": 0.0, "timeoutRate": 0.0, "partialFillRate": 0.0}
REJECTS: dict[str, object] = {"rejectRate": 1.0, "timeoutRate": 0.0, "partialFillRate": 0.0}


def paper(adapter_config: dict[str, object]) -> BrokerConfig:
    return BrokerConfig(
        broker_id="papr",
        display_name="Paper",
        adapter="paper",
        adapter_config=adapter_config,
        webhook_auth=WebhookAuth.HMAC,
        webhook_secret_ref="papr/webhook",
    )


def child(n: int) -> ChildOrder:
    return ChildOrder(
        child_order_id=f"ord-0123456789abcdef0123456789abcdef-1-{n}",
        order_id="ord-0123456789abcdef0123456789abcdef",
        user_id="trader-1",
        broker_id="papr",
        symbol="RELIANCE",
        exchange=Exchange.NSE,
        side=Side.BUY,
        quantity=10,
        order_type=OrderType.MARKET,
        product=Product.MIS,
        expected_price=Decimal("1295.40"),
    )


def at_four() -> datetime:
    return datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


class Table:
    """The ``brokers`` table in memory, editable while the registry runs; it can go down."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config: BrokerConfig | None = config
        self.down = False
        self.reads = 0

    def list_enabled(self) -> list[BrokerConfig]:
        return [self.config] if self.config else []

    def get(self, broker_id: str) -> BrokerConfig | None:
        self.reads += 1
        if self.down:
            raise DataUnavailableError("connection refused")
        return self.config if self.config and self.config.broker_id == broker_id else None


class NoMarket:
    def quote(self, symbol: str) -> Quote | None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry(table: Table, clock: Clock) -> BrokerGatewayRegistry:
    return BrokerGatewayRegistry(
        table,
        market=NoMarket(),
        seed=1,
        clock=at_four,
        paper_config_ttl_s=5.0,
        monotonic=clock,
    )


def test_an_edited_behaviour_takes_effect_after_the_ttl_without_a_restart() -> None:
    # GIVEN a registry whose paper broker accepts everything
    table, clock = Table(paper(ACCEPTS)), Clock()
    gateway = registry(table, clock)
    first = gateway.place(child(1), timeout_s=2.0)
    # WHEN an operator makes it reject everything, and the TTL passes
    table.config = paper(REJECTS)
    clock.now += 4.9
    within_ttl = gateway.place(child(2), timeout_s=2.0)
    clock.now += 0.2
    after_ttl = gateway.place(child(3), timeout_s=2.0)
    # THEN the old truth holds within the TTL and the new one after it, on the same broker
    # (its sequence goes on: the order book and the random generator were kept)
    assert first.status is ChildOrderStatus.PLACED
    assert within_ttl.status is ChildOrderStatus.PLACED
    assert after_ttl.status is ChildOrderStatus.REJECTED
    assert after_ttl.broker_order_id is not None
    assert after_ttl.broker_order_id.endswith("000003")
    assert gateway.lookup(child(1), timeout_s=2.0).status is ChildOrderStatus.PLACED


def test_reload_applies_a_change_at_once() -> None:
    # GIVEN a running paper broker
    table, clock = Table(paper(ACCEPTS)), Clock()
    gateway = registry(table, clock)
    assert gateway.place(child(1), timeout_s=2.0).status is ChildOrderStatus.PLACED
    # WHEN its behaviour changes and the simulation asks for it now
    table.config = paper(REJECTS)
    gateway.reload("papr")
    # THEN the next child sees the new truth although the TTL has not passed
    assert gateway.place(child(2), timeout_s=2.0).status is ChildOrderStatus.REJECTED


def test_an_unreadable_table_keeps_the_last_behaviour_and_retries_later() -> None:
    # GIVEN a running paper broker, then Postgres goes down as the TTL passes
    table, clock = Table(paper(ACCEPTS)), Clock()
    gateway = registry(table, clock)
    gateway.place(child(1), timeout_s=2.0)
    table.config, table.down = paper(REJECTS), True
    clock.now += 6
    # WHEN children are placed while it is down, and after it is back and the TTL passes again
    while_down = gateway.place(child(2), timeout_s=2.0)
    reads_while_down = table.reads
    gateway.place(child(3), timeout_s=2.0)
    reads_after_next = table.reads
    table.down = False
    clock.now += 6
    after = gateway.place(child(4), timeout_s=2.0)
    # THEN placing never failed on the outage, it was not re-read on every child, and the
    # change arrived once the table could be read
    assert while_down.status is ChildOrderStatus.PLACED
    assert reads_after_next == reads_while_down
    assert after.status is ChildOrderStatus.REJECTED


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"rejectRate": 1.5}, "adapter_config.rejectRate"),
        ({"rejectRat": 0.5}, "adapter_config.rejectRat"),
    ],
)
def test_an_unusable_behaviour_rejects_with_the_reason(
    config: dict[str, object], reason: str
) -> None:
    # GIVEN a running paper broker
    table, clock = Table(paper(ACCEPTS)), Clock()
    gateway = registry(table, clock)
    gateway.place(child(1), timeout_s=2.0)
    # WHEN an operator stores a behaviour that is out of range or misspelt
    table.config = paper(config)
    gateway.reload("papr")
    result = gateway.place(child(2), timeout_s=2.0)
    # THEN the child is rejected (its quantity cascades) with the field named, never a crash
    assert result.status is ChildOrderStatus.REJECTED
    assert result.reason is not None
    assert reason in result.reason


def test_a_broker_removed_from_the_table_is_dropped() -> None:
    # GIVEN a running paper broker
    table, clock = Table(paper(ACCEPTS)), Clock()
    gateway = registry(table, clock)
    gateway.place(child(1), timeout_s=2.0)
    # WHEN its row disappears
    table.config = None
    gateway.reload("papr")
    result = gateway.place(child(2), timeout_s=2.0)
    # THEN it is an unknown broker, rejected with the reason
    assert result.status is ChildOrderStatus.REJECTED
    assert result.reason is not None
    assert "unknown broker" in result.reason


def test_set_behaviour_changes_the_draws_from_the_next_placement() -> None:
    # GIVEN two paper brokers with one seed, one of which turns to rejecting everything
    steady = PaperBroker(
        "papr", PaperBehaviour.model_validate(ACCEPTS), NoMarket(), seed=3, clock=at_four
    )
    changed = PaperBroker(
        "papr", PaperBehaviour.model_validate(ACCEPTS), NoMarket(), seed=3, clock=at_four
    )
    # WHEN the second one's truth changes after its first placement
    firsts = [b.place(child(1), timeout_s=2.0) for b in (steady, changed)]
    changed.set_behaviour(PaperBehaviour.model_validate(REJECTS))
    seconds = [b.place(child(2), timeout_s=2.0) for b in (steady, changed)]
    # THEN both placed alike until the change, and only the changed one rejects after it
    assert [r.status for r in firsts] == [ChildOrderStatus.PLACED] * 2
    assert firsts[0].reports[0].average_price == firsts[1].reports[0].average_price
    assert [r.status for r in seconds] == [ChildOrderStatus.PLACED, ChildOrderStatus.REJECTED]
    assert changed.behaviour.reject_rate == 1.0
