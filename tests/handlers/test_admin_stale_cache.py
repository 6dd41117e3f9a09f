"""A broker put in MAINTENANCE gets no flow even when Redis missed the eviction (Redis stopped).

functions/admin and functions/route_order through lambda_handler, real Postgres and a real,
persistent Redis that is stopped during the admin call and restarted with its data: the cached
profiles that say the broker is AVAILABLE come back, and routing must not trust them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import shared.wiring
from functions.admin import handler as admin
from functions.route_order import handler as route_order
from local.services import EmbeddedRedis
from shared.adapters.redis.profile_cache import RedisProfileCache
from shared.domain.contracts import ADMIN_PREFIX
from shared.domain.models import BrokerStatus
from shared.settings import Settings
from shared.wiring import Wiring
from tests.handlers.support import ADMIN, API, RecordingNotifier, call, handler_settings

ORDER = {"symbol": "RELIANCE", "side": "BUY", "quantity": 100, "orderType": "MARKET"}


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir=tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def _container(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Wiring:
    # A fresh wiring is a fresh Lambda container: no in-process memory of an earlier failure.
    built = Wiring(settings, notifier=RecordingNotifier())
    monkeypatch.setattr(shared.wiring, "get_wiring", lambda: built)
    return built


def _route(key: str) -> dict[str, Any]:
    status, answer, _ = call(
        route_order, "POST", f"{API}/orders/analyze", body={**ORDER, "clientOrderId": key}
    )
    assert status == 200, answer
    return dict(answer)


def test_maintenance_holds_although_the_eviction_missed_a_stopped_redis(
    wiring: Wiring,
    app_settings: Settings,
    persistent_redis: EmbeddedRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN routing on a persistent Redis, its profile cache warm with zerodha AVAILABLE
    settings = handler_settings(app_settings, redis_url=persistent_redis.url)
    _container(settings, monkeypatch)
    first = _route("warm")
    assert "zerodha" in {s["brokerId"] for s in first["brokerScores"] if not s["exclusionReason"]}
    # WHEN Redis is stopped and an operator puts zerodha in MAINTENANCE (the eviction fails)
    persistent_redis.stop()
    _container(settings, monkeypatch)
    status, body, _ = call(
        admin,
        "PUT",
        f"{ADMIN_PREFIX}/brokers/zerodha/status",
        body={"status": "MAINTENANCE", "reason": "exchange connectivity"},
        claims=ADMIN,
    )
    assert status == 200, body
    # AND Redis comes back with its data: the stale AVAILABLE entry is served again
    persistent_redis.start()
    client = redis.Redis.from_url(persistent_redis.url)
    cache = RedisProfileCache(client, ttl_s=300, prefix=settings.redis_key_prefix)
    keys = cache.keys("RELIANCE", ["zerodha"])
    cached = cache.decode("RELIANCE", ["zerodha"], client.mget(keys))["zerodha"]
    client.close()
    assert cached is not None
    assert cached.status is BrokerStatus.AVAILABLE, "the test needs the stale entry"
    # THEN the next order, in a new container reading that cache, gives zerodha nothing
    _container(settings, monkeypatch)
    after = _route("after-maintenance")
    assert "zerodha" not in {a["brokerId"] for a in after["allocations"]}
    zerodha = next(s for s in after["brokerScores"] if s["brokerId"] == "zerodha")
    assert zerodha["exclusionReason"] == "broker is MAINTENANCE"
