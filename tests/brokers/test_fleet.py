"""One order split across the three simulators through the real adapters, postbacks verified."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from local.simulators import Behaviour
from local.simulators.fleet import start_fleet
from shared.adapters.brokers.webhooks import (
    NORMALISERS,
    parse_json_body,
    verify_kite_checksum,
    verify_path_token,
)
from shared.adapters.secrets import JsonSecretStore
from shared.domain.brokers import WebhookAuth
from shared.domain.execution import ExecutionStatus
from shared.domain.orders import ChildOrderStatus
from tests.brokers.support import Receiver
from tests.brokers.test_gateway import child, registry


def test_one_order_split_across_kite_upstox_and_dhan(receiver: Receiver) -> None:
    # GIVEN the three simulators, their rows and secrets, and a registry built from them
    run = f"fleet{time.monotonic_ns()}"
    fleet = start_fleet(receiver.url(run))
    try:
        store = JsonSecretStore(fleet.secrets_json())
        gateway = registry(*fleet.configs, secrets=store)
        fleet.simulators["upstox"].sim.behaviour = Behaviour(fill_price=Decimal("2450.10"))
        fleet.simulators["dhan"].sim.behaviour = Behaviour(fill_price=Decimal("2450.20"))
        fleet.simulators["kite"].sim.behaviour = Behaviour(fill_price=Decimal("2450.00"))
        split = {"zerodha": 120, "upstox": 100, "dhan": 80}
        children = [
            child(
                broker_id, child_order_id=f"ord-0123456789abcdef0123456789abcdef-{n}-1", quantity=q
            )
            for n, (broker_id, q) in enumerate(split.items(), start=1)
        ]
        # WHEN the children are placed in parallel, as the routing service does
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda c: gateway.place(c, timeout_s=5.0), children))
        # THEN each is placed with its broker
        assert [r.status for r in results] == [ChildOrderStatus.PLACED] * 3, [
            r.reason for r in results
        ]
        # AND every postback verifies by its broker's scheme and adds up to the whole order
        postbacks = receiver.wait_for(3, prefix=run)
        assert len(postbacks) == 3
        configs = {c.broker_id: c for c in fleet.configs}
        filled: dict[str, int] = {}
        for postback in postbacks:
            broker_id = postback.path.split("/")[3]
            config = configs[broker_id]
            secret = store.get(config.webhook_secret_ref)
            payload = parse_json_body(postback.body)
            if config.webhook_auth is WebhookAuth.KITE_CHECKSUM:
                verify_kite_checksum(payload, secret)
            else:
                verify_path_token(postback.path.rsplit("/", 1)[-1], secret)
            report = NORMALISERS[config.adapter](payload, broker_id=broker_id)
            assert report.status is ExecutionStatus.FILLED
            filled[broker_id] = report.filled_quantity
        assert filled == split
        assert sum(filled.values()) == 300
        # AND the credentials travel only by reference: no row holds a token
        rows = json.dumps([c.model_dump(mode="json") for c in fleet.configs])
        for value in fleet.secrets.values():
            assert value not in rows
    finally:
        fleet.stop()
