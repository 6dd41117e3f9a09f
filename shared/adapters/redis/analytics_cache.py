"""A trader's execution analytics, cached in Redis for a short time."""

from __future__ import annotations

import redis

from shared.adapters.redis.client import RedisGuard
from shared.domain.analytics import ExecutionAnalytics


class RedisAnalyticsCache:
    """``analytics:{user_id}:{days}`` -> the analytics JSON, expiring after ``ttl_s``.

    Failures raise ``CacheUnavailableError`` (through the guard).
    """

    def __init__(
        self, client: redis.Redis, *, ttl_s: int, prefix: str = "", guard: RedisGuard
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix
        self._guard = guard

    def get(self, user_id: str, days: int) -> ExecutionAnalytics | None:
        """The cached analytics, or ``None`` when absent or expired."""
        with self._guard.call():
            cached = self._client.get(self._key(user_id, days))
        return None if cached is None else ExecutionAnalytics.model_validate_json(cached)

    def put(self, user_id: str, days: int, analytics: ExecutionAnalytics) -> None:
        """Cache ``analytics`` for ``ttl_s`` seconds."""
        with self._guard.call():
            self._client.set(self._key(user_id, days), analytics.model_dump_json(), ex=self._ttl_s)

    def _key(self, user_id: str, days: int) -> str:
        return f"{self._prefix}analytics:{user_id}:{days}"
