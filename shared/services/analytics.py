"""Execution analytics of a trader, cached in Redis for a minute."""

from __future__ import annotations

from contextlib import suppress

import redis

from shared.adapters.redis.client import RedisGuard
from shared.domain.analytics import ExecutionAnalytics
from shared.domain.errors import CacheUnavailableError
from shared.ports import AnalyticsRepository


class AnalyticsService:
    """Per-user analytics over N days; the aggregate query runs at most once a minute per key.

    A dashboard polling every few seconds would otherwise run the percentile query on every
    poll. Sixty seconds of staleness is fine for figures over days; a new execution shows up
    within a minute.
    """

    def __init__(
        self,
        repository: AnalyticsRepository,
        client: redis.Redis,
        *,
        ttl_s: int = 60,
        prefix: str = "",
        guard: RedisGuard | None = None,
    ) -> None:
        self._repository = repository
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix
        self._guard = guard or RedisGuard()

    def execution_analytics(self, user_id: str, days: int) -> ExecutionAnalytics:
        """Analytics of ``user_id`` over the last ``days`` days (zeros for an empty window)."""
        key = f"{self._prefix}analytics:{user_id}:{days}"
        with suppress(CacheUnavailableError), self._guard.call():
            cached = self._client.get(key)
            if cached is not None:
                return ExecutionAnalytics.model_validate_json(cached)
        analytics = self._repository.execution_analytics(user_id, days)
        with suppress(CacheUnavailableError), self._guard.call():
            self._client.set(key, analytics.model_dump_json(), ex=self._ttl_s)
        return analytics
