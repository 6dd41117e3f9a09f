"""Hostile ``adapterConfig`` on the admin API: 422 with the field path, nothing stored.

functions/admin through lambda_handler, real Postgres and Redis (docs/api.md, "Admin API").
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.admin import handler as admin
from shared.domain.contracts import ADMIN_PREFIX
from shared.wiring import Wiring
from tests.handlers.support import ADMIN, call

BROKERS = f"{ADMIN_PREFIX}/brokers"


def _broker(adapter: str, config: Any, webhook: str = "HMAC") -> dict[str, Any]:
    return {
        "brokerId": "hostile",
        "displayName": "Hostile",
        "adapter": adapter,
        "adapterConfig": config,
        "webhookAuth": webhook,
        "webhookSecretRef": "hostile/webhook",
    }


HOSTILE = [
    # unknown keys
    ("paper", {"rejectRate": 0.0, "fillEverything": True}, "adapterConfig.fillEverything"),
    (
        "kite",
        {"instruments": {"NSE:RELIANCE": "NSE_EQ|INE002A01018"}},
        "adapterConfig.instruments",
    ),
    ("kite", {"appRef": "kite/app", "pollEvery": 5}, "adapterConfig.pollEvery"),
    ("dhan", {"orderBaseUrl": "https://x.example"}, "adapterConfig.orderBaseUrl"),
    ("generic", {"anything": 1}, "adapterConfig.anything"),
    # wrong types
    ("paper", {"rejectRate": "0.5"}, "adapterConfig.rejectRate"),
    ("paper", {"simulateDelay": "yes"}, "adapterConfig.simulateDelay"),
    ("kite", {"limits": {"perSecond": "10"}}, "adapterConfig.limits.perSecond"),
    ("upstox", {"instruments": ["NSE_EQ|INE002A01018"]}, "adapterConfig.instruments"),
    # huge or impossible values
    ("paper", {"rejectRate": 7}, "adapterConfig.rejectRate"),
    ("paper", {"fillLatencyMs": 1e300}, "adapterConfig.fillLatencyMs"),
    ("paper", {"slippageBpsMean": -1e9}, "adapterConfig.slippageBpsMean"),
    ("kite", {"limits": {"perSecond": 10**12}}, "adapterConfig.limits.perSecond"),
    ("kite", {"baseUrl": "https://" + "a" * 5000 + ".example"}, "adapterConfig.baseUrl"),
    (
        "upstox",
        {"instruments": {"NSE:RELIANCE": "x" * 1000}},
        "adapterConfig.instruments.NSE:RELIANCE",
    ),
    ("upstox", {"instruments": {"'; DROP TABLE brokers; --": "x"}}, "adapterConfig.instruments"),
    # unsafe endpoints: plain http to another host, credentials in the URL, no URL at all
    ("kite", {"baseUrl": "http://api.kite.trade"}, "adapterConfig.baseUrl"),
    ("kite", {"loginUrl": "https://user:pw@kite.zerodha.com"}, "adapterConfig.loginUrl"),
    ("dhan", {"baseUrl": "file:///etc/passwd"}, "adapterConfig.baseUrl"),
    # secrets in plain text where a secret reference is expected
    ("kite", {"apiSecret": "s3cr3t"}, "adapterConfig.apiSecret"),
    ("kite", {"accessToken": "abc"}, "adapterConfig.accessToken"),
    ("upstox", {"limits": {"perSecond": 5, "clientSecret": "x"}}, "adapterConfig.limits"),
    ("kite", {"appRef": "k3y5ecr3tVa1ueW1th0utAPath"}, "adapterConfig.appRef"),
    ("dhan", {"credentialsRef": "eyJhbGciOi.eyJzdWIi.c2ln"}, "adapterConfig.credentialsRef"),
]


@pytest.mark.parametrize(("adapter", "config", "field"), HOSTILE)
def test_a_hostile_adapter_config_is_refused_with_its_field(
    wiring: Wiring, adapter: str, config: Any, field: str
) -> None:
    # GIVEN a registration whose adapterConfig its adapter cannot use
    webhook = {"kite": "KITE_CHECKSUM", "upstox": "PATH_TOKEN", "dhan": "PATH_TOKEN"}
    body = _broker(adapter, config, webhook.get(adapter, "HMAC"))
    # WHEN an operator registers it
    status, answer, _ = call(admin, "POST", BROKERS, body=body, claims=ADMIN)
    # THEN it is a 422 in the one error shape naming the field, and nothing is stored
    assert status == 422, answer
    assert answer["error"]["code"] == "INVALID_REQUEST"
    assert answer["error"]["field"].startswith(field), answer
    assert wiring.brokers.get("hostile") is None


def test_a_config_that_is_not_an_object_is_a_schema_error(wiring: Wiring) -> None:
    # GIVEN an adapterConfig that is a list
    # WHEN it is registered
    status, answer, _ = call(admin, "POST", BROKERS, body=_broker("paper", [1]), claims=ADMIN)
    # THEN the schema refuses it (422), never a 500
    assert status == 422, answer
    assert wiring.brokers.get("hostile") is None


def test_good_configs_are_registered(wiring: Wiring) -> None:
    # GIVEN well-formed configs of each kind
    good: list[tuple[str, dict[str, Any]]] = [
        ("paper", {"rejectRate": 0.0, "ack_latency_ms": 35}),
        ("kite", {"appRef": "kite/app", "baseUrl": "http://127.0.0.1:9000"}),
        (
            "upstox",
            {
                "appRef": "upstox/app",
                "instruments": {"NSE:RELIANCE": "NSE_EQ|INE002A01018"},
                "limits": {"perSecond": 50, "perMinute": 500},
            },
        ),
        ("dhan", {"securityIds": {"NSE:RELIANCE": "2885"}}),
        # as the catalog stores a simulated broker's: snake_case keys, unused maps empty
        ("kite", {"app_ref": "kite-sim/app", "instruments": {}, "security_ids": {}}),
    ]
    webhook = {"kite": "KITE_CHECKSUM", "upstox": "PATH_TOKEN", "dhan": "PATH_TOKEN"}
    for n, (adapter, config) in enumerate(good):
        body = _broker(adapter, config, webhook.get(adapter, "HMAC"))
        body["brokerId"] = f"new-{adapter}-{n}"
        # WHEN each is registered
        status, answer, _ = call(admin, "POST", BROKERS, body=body, claims=ADMIN)
        # THEN it is stored with the keys given (numbers come back as JSON decimals)
        assert status == 201, answer
        assert set(answer["broker"]["adapterConfig"]) == set(config)


def test_an_update_with_a_hostile_config_changes_nothing(wiring: Wiring) -> None:
    # GIVEN a seeded paper broker
    before = wiring.brokers.get("zerodha")
    assert before is not None
    # WHEN an operator patches its config with a plain-text secret, then a wrong type
    for config, field in (
        ({"password": "hunter2"}, "adapterConfig.password"),
        ({"rejectRate": [0.1]}, "adapterConfig.rejectRate"),
    ):
        status, answer, _ = call(
            admin, "PATCH", f"{BROKERS}/zerodha", body={"adapterConfig": config}, claims=ADMIN
        )
        # THEN it is a 422 naming the field, and the broker is unchanged
        assert status == 422, answer
        assert answer["error"]["field"] == field
    assert wiring.brokers.get("zerodha") == before
