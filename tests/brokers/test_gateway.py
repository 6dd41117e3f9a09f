"""Real brokers behind the routing service's gateway: the registry, credentials and outcomes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from local.simulators import Behaviour
from shared.adapters.brokers.catalog import RealBrokerSettings, broker_config
from shared.adapters.brokers.gateway import ClientGateway, secret_account
from shared.adapters.brokers.registry import BrokerGatewayRegistry
from shared.adapters.secrets import JsonSecretStore
from shared.domain.broker_orders import BrokerCallError, BrokerErrorKind, broker_tag
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.errors import DataUnavailableError
from shared.domain.execution import ExecutionStatus
from shared.domain.models import Exchange, OrderType, Product, Quote, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import LookupOutcome
from tests.brokers.support import BrokerCase

CHILD_ID = "ord-0123456789abcdef0123456789abcdef-1-1"


def child(broker_id: str, **changes: object) -> ChildOrder:
    fields: dict[str, object] = {
        "child_order_id": CHILD_ID,
        "order_id": "ord-0123456789abcdef0123456789abcdef",
        "user_id": "trader-1",
        "broker_id": broker_id,
        "symbol": "RELIANCE",
        "exchange": Exchange.NSE,
        "side": Side.BUY,
        "quantity": 25,
        "order_type": OrderType.LIMIT,
        "product": Product.CNC,
        "limit_price": Decimal("2450.05"),
    }
    return ChildOrder.model_validate(fields | changes)


class Brokers:
    """The ``brokers`` table, in memory (the registry reads one row by id)."""

    def __init__(self, *configs: BrokerConfig) -> None:
        self._configs = {c.broker_id: c for c in configs}

    def list_enabled(self) -> list[BrokerConfig]:
        return [c for c in self._configs.values() if c.enabled]

    def get(self, broker_id: str) -> BrokerConfig | None:
        return self._configs.get(broker_id)


class NoMarket:
    def quote(self, symbol: str) -> Quote | None:
        return None


def credentials(case: BrokerCase) -> str:
    return json.dumps(
        {
            "api_key": case.account.api_key,
            "client_id": case.account.client_id,
            "access_token": case.account.access_token.get_secret_value(),
        }
    )


def config_for(case: BrokerCase, **settings: object) -> BrokerConfig:
    instruments = {"NSE:RELIANCE": "NSE_EQ|INE002A01018"} if case.name == "upstox" else {}
    security_ids = {"NSE:RELIANCE": "2885"} if case.name == "dhan" else {}
    return broker_config(
        f"{case.name}-live",
        case.name,
        display_name=case.name.title(),
        settings=RealBrokerSettings.model_validate(
            {
                "credentials_ref": f"broker/{case.name}/platform",
                "base_url": case.running.url,
                "instruments": instruments,
                "security_ids": security_ids,
            }
            | settings
        ),
        webhook_secret_ref=f"webhook/{case.name}",
    )


def registry(*configs: BrokerConfig, secrets: JsonSecretStore | None) -> BrokerGatewayRegistry:
    return BrokerGatewayRegistry(
        Brokers(*configs),
        market=NoMarket(),
        seed=1,
        clock=lambda: datetime(2026, 12, 1, 4, 0, tzinfo=UTC),
        secrets=secrets,
    )


def test_the_registry_builds_each_real_broker_from_its_config(case: BrokerCase) -> None:
    # GIVEN a broker row pointing at the simulator, its credentials in the secret store
    config = config_for(case)
    secrets = JsonSecretStore(json.dumps({f"broker/{case.name}/platform": credentials(case)}))
    case.sim.behaviour = Behaviour(outcome="open")
    # WHEN a child order is placed through the registry
    result = registry(config, secrets=secrets).place(child(config.broker_id), timeout_s=5.0)
    # THEN it is placed, under a tag derived from the child id the broker accepts
    assert result.status is ChildOrderStatus.PLACED, result.reason
    assert result.broker_order_id in case.sim.book.orders
    booked = case.sim.book.orders[result.broker_order_id]
    assert booked.tag == broker_tag(CHILD_ID, case.client.tag_length)
    assert (booked.quantity, booked.price) == (25, Decimal("2450.05"))
    assert result.response_time_ms is not None


@pytest.mark.parametrize(
    ("failure", "status", "family"),
    [
        ("token", ChildOrderStatus.REJECTED, "TOKEN"),
        ("order", ChildOrderStatus.REJECTED, "ORDER"),
        ("rate", ChildOrderStatus.REJECTED, "RATE_LIMITED"),
        ("server", ChildOrderStatus.TIMED_OUT, "SERVER"),
        ("not_json", ChildOrderStatus.TIMED_OUT, "SERVER"),
    ],
)
def test_failures_become_child_outcomes_with_reasons(
    case: BrokerCase, failure: str, status: ChildOrderStatus, family: str
) -> None:
    # GIVEN a broker that fails the next call
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    case.sim.fail_next(failure)
    # WHEN a child is placed
    result = gateway.place(child(case.name), timeout_s=5.0)
    # THEN a sure refusal cascades (REJECTED), an unknown outcome must be reconciled (TIMED_OUT)
    assert result.status is status
    assert result.reason is not None
    assert result.reason.startswith(family)
    assert result.broker_order_id is None


def test_a_timeout_is_timed_out_not_rejected(case: BrokerCase) -> None:
    # GIVEN a broker slower than the placement timeout
    case.sim.behaviour = Behaviour(outcome="open", ack_delay_s=1.0)
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    # WHEN a child is placed with a 0.2 s timeout
    result = gateway.place(child(case.name), timeout_s=0.2)
    # THEN it timed out (the order lives at the broker until cancelled)
    assert result.status is ChildOrderStatus.TIMED_OUT
    assert result.reason is not None
    assert result.reason.startswith("TIMEOUT")
    assert len(case.sim.book.orders) == 1


def test_missing_or_broken_credentials_reject_without_leaking_them(
    case_factory: Callable[..., BrokerCase],
) -> None:
    case = case_factory("kite")
    secret_token = "do-not-log-me-0123456789"
    for document in ({}, {"broker/kite/platform": "{not json " + secret_token}):
        # GIVEN no usable credentials under the broker's reference
        config = config_for(case)
        gateway = registry(config, secrets=JsonSecretStore(json.dumps(document)))
        # WHEN a child is placed
        result = gateway.place(child(config.broker_id), timeout_s=5.0)
        # THEN it is refused as a token problem, the secret nowhere in the reason
        assert result.status is ChildOrderStatus.REJECTED
        assert result.reason is not None
        assert result.reason.startswith("TOKEN")
        assert secret_token not in result.reason
        assert case.sim.requests == []


def test_brokers_without_a_usable_adapter_are_rejected_with_the_reason(
    case_factory: Callable[..., BrokerCase],
) -> None:
    case = case_factory("dhan")
    good = config_for(case)
    no_ref = good.model_copy(
        update={"broker_id": "dhan-bad", "adapter_config": {"base_url": case.running.url}}
    )
    generic = good.model_copy(update={"broker_id": "other", "adapter": "generic"})
    secrets = JsonSecretStore("{}")
    cases = [
        (registry(no_ref, secrets=secrets), "dhan-bad", "no platform credentials configured"),
        (registry(generic, secrets=secrets), "other", "adapter 'generic' is not implemented"),
        (registry(good, secrets=None), good.broker_id, "no platform credentials configured"),
        (registry(secrets=secrets), "ghost", "unknown broker"),
    ]
    for gateway, broker_id, reason in cases:
        # WHEN a child goes to such a broker
        result = gateway.place(child(broker_id), timeout_s=5.0)
        # THEN it is rejected with a reason naming what is missing
        assert result.status is ChildOrderStatus.REJECTED
        assert result.reason is not None
        assert reason in result.reason, result.reason


def test_a_child_the_port_cannot_express_is_rejected_before_sending(
    case_factory: Callable[..., BrokerCase],
) -> None:
    # GIVEN a stop-loss child without its trigger price
    case = case_factory("kite")
    gateway = ClientGateway("kite", case.client, lambda _user: case.account)
    bad = child("kite", order_type=OrderType.STOP_LOSS, trigger_price=None)
    # WHEN it is placed
    result = gateway.place(bad, timeout_s=5.0)
    # THEN it is an input rejection and nothing was sent
    assert result.status is ChildOrderStatus.REJECTED
    assert result.reason is not None
    assert "trigger price" in result.reason
    assert case.sim.requests == []


def test_published_limits_become_eligibility_data() -> None:
    # WHEN each real broker's row is built from its settings
    rows = {
        name: broker_config(
            name,
            name,
            display_name=name,
            settings=RealBrokerSettings(credentials_ref=f"broker/{name}"),
            webhook_secret_ref=f"webhook/{name}",
        )
        for name in ("kite", "upstox", "dhan")
    }
    # THEN the per-second limit is what eligibility counts, and the rest travels with it
    assert {n: r.rate_limit_per_s for n, r in rows.items()} == {
        "kite": 10,
        "upstox": 50,
        "dhan": 10,
    }
    assert rows["kite"].adapter_config["limits"]["per_minute"] == 200
    assert rows["kite"].adapter_config["limits"]["per_day"] == 3000
    assert rows["dhan"].adapter_config["limits"]["per_day"] == 7000
    assert rows["kite"].webhook_auth is WebhookAuth.KITE_CHECKSUM
    assert rows["upstox"].webhook_auth is WebhookAuth.PATH_TOKEN
    assert rows["dhan"].webhook_auth is WebhookAuth.PATH_TOKEN
    # AND an account with raised limits overrides them
    raised = broker_config(
        "kite2",
        "kite",
        display_name="Kite",
        settings=RealBrokerSettings.model_validate(
            {"credentials_ref": "broker/kite", "limits": {"per_second": 20, "per_day": 5000}}
        ),
        webhook_secret_ref="webhook/kite",
    )
    assert raised.rate_limit_per_s == 20
    assert raised.adapter_config["limits"]["per_day"] == 5000


def test_secret_account_reads_the_current_secret_each_time() -> None:
    # GIVEN a store whose token is replaced (Kite's expires every morning)
    document = {"ref": json.dumps({"api_key": "k", "access_token": "monday"})}
    store = JsonSecretStore(json.dumps(document))
    load = secret_account(store, "ref")
    first = load("trader-1")
    store._mapping["ref"] = json.dumps({"api_key": "k", "access_token": "tuesday"})
    # WHEN the account is read again
    second = load("trader-1")
    # THEN the new token is used, and neither appears in a repr
    assert first.access_token.get_secret_value() == "monday"
    assert second.access_token.get_secret_value() == "tuesday"
    assert "tuesday" not in repr(second)


def test_an_unreachable_secret_store_rejects_and_sends_nothing(
    case_factory: Callable[..., BrokerCase],
) -> None:
    # GIVEN a secret store that cannot be reached
    class DownStore:
        def get(self, ref: str) -> list[str]:
            raise DataUnavailableError("Secrets Manager timed out")

    case = case_factory("upstox")
    gateway = ClientGateway("upstox", case.client, secret_account(DownStore(), "ref"))
    # WHEN a child is placed
    result = gateway.place(child("upstox"), timeout_s=5.0)
    # THEN it is rejected (not sent, so it may cascade) with the reason
    assert result.status is ChildOrderStatus.REJECTED
    assert result.reason is not None
    assert "credentials store unavailable" in result.reason
    assert case.sim.requests == []


def test_the_reconciler_lookup_finds_settles_or_denies_by_tag(case: BrokerCase) -> None:
    # GIVEN a child whose placement timed out after the broker filled 30% of it
    case.sim.behaviour = Behaviour(outcome="partial", partial_fraction=0.3, ack_delay_s=1.0)
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    placed = child(case.name, quantity=10)
    assert gateway.place(placed, timeout_s=0.2).status is ChildOrderStatus.TIMED_OUT
    # WHEN the reconciler asks the broker about it, and about a child never sent
    found = gateway.lookup(placed, timeout_s=5.0)
    never = gateway.lookup(
        child(case.name, child_order_id="ord-ffffffffffffffffffffffffffffffff-9-9"), timeout_s=5.0
    )
    # THEN the first is found with its fills (one cumulative report), the second is not there
    assert found.outcome is LookupOutcome.FOUND
    assert found.status is ChildOrderStatus.PARTIALLY_FILLED
    assert found.broker_order_id in case.sim.book.orders
    (report,) = found.reports
    assert (report.child_order_id, report.filled_quantity) == (CHILD_ID, 3)
    assert report.status is ExecutionStatus.PARTIALLY_FILLED
    assert never.outcome is LookupOutcome.NOT_FOUND


def test_a_lookup_the_broker_cannot_answer_is_unknown(case: BrokerCase) -> None:
    # GIVEN a broker failing with a server error
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    case.sim.fail_next("server")
    # WHEN a child is looked up
    answer = gateway.lookup(child(case.name), timeout_s=5.0)
    # THEN the reconciler is told it cannot know, with the reason
    assert answer.outcome is LookupOutcome.UNKNOWN
    assert answer.reason is not None
    assert answer.reason.startswith("SERVER")


def test_the_registry_looks_real_brokers_up_and_denies_unbuildable_ones(
    case_factory: Callable[..., BrokerCase],
) -> None:
    # GIVEN a Kite row pointing at its simulator and a row whose adapter is not implemented
    case = case_factory("kite")
    config = config_for(case)
    other = config.model_copy(update={"broker_id": "other", "adapter": "generic"})
    secrets = JsonSecretStore(json.dumps({"broker/kite/platform": credentials(case)}))
    gateway = registry(config, other, secrets=secrets)
    case.sim.behaviour = Behaviour(outcome="fill")
    gateway.place(child(config.broker_id), timeout_s=5.0)
    # WHEN both are looked up
    found = gateway.lookup(child(config.broker_id), timeout_s=5.0)
    denied = gateway.lookup(child("other"), timeout_s=5.0)
    # THEN the real broker's order is found filled; the other never received anything
    assert (found.outcome, found.status) == (LookupOutcome.FOUND, ChildOrderStatus.FILLED)
    assert denied.outcome is LookupOutcome.NOT_FOUND
    assert denied.reason is not None
    assert "not implemented" in denied.reason


def paper_config(broker_id: str, **behaviour: float) -> BrokerConfig:
    return BrokerConfig(
        broker_id=broker_id,
        display_name=broker_id.title(),
        adapter="paper",
        adapter_config={"timeoutRate": 0.0, **behaviour},
        webhook_auth=WebhookAuth.HMAC,
        webhook_secret_ref=f"{broker_id}/webhook",
    )


def test_health_probes_answer_like_placements_and_never_change_their_draws(
    case: BrokerCase,
) -> None:
    # GIVEN a paper broker that is down, one that is up, and a real broker (no probe here)
    down, up = paper_config("down", timeoutRate=1.0), paper_config("up")
    gateways = registry(down, up, config_for(case), secrets=None)
    # WHEN each is probed
    # THEN the down broker never answers, the up broker does, the real one cannot tell, and
    #      an unknown broker cannot either
    assert [gateways.probe("down", timeout_s=2.0) for _ in range(20)] == [False] * 20
    assert [gateways.probe("up", timeout_s=2.0) for _ in range(20)] == [True] * 20
    assert gateways.probe(f"{case.name}-live", timeout_s=2.0) is None
    assert gateways.probe("nobody", timeout_s=2.0) is None
    # AND an answer later than the bound is no answer
    assert gateways.probe("up", timeout_s=0.0) is False
    # AND probing does not change the outcomes of the orders a replay places
    probed, quiet = registry(up, secrets=None), registry(up, secrets=None)
    for _ in range(5):
        probed.probe("up", timeout_s=2.0)
    first = [probed.place(child("up"), timeout_s=2.0) for n in range(5)]
    second = [quiet.place(child("up"), timeout_s=2.0) for n in range(5)]
    assert [r.response_time_ms for r in first] == [r.response_time_ms for r in second]


def test_a_real_broker_probe_reads_the_order_book_and_tells_up_from_down(
    case: BrokerCase,
) -> None:
    # GIVEN a real broker's gateway with the platform's account
    gateway = ClientGateway(case.name, case.client, lambda _user: case.account)
    # WHEN it is probed while the broker answers
    # THEN it is up, and nothing was placed
    assert gateway.probe(timeout_s=2.0) is True
    assert case.sim.book.orders == {}
    # AND without an account to ask with, it cannot tell
    no_account = ClientGateway(case.name, case.client, lambda _user: no_credentials())
    assert no_account.probe(timeout_s=2.0) is None
    # WHEN the broker goes away (nothing listens any more)
    case.running.stop()
    # THEN the probe says it is down, without raising
    assert gateway.probe(timeout_s=0.5) is False


def no_credentials() -> Any:
    raise BrokerCallError(BrokerErrorKind.TOKEN, "no platform account")
