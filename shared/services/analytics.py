"""Execution analytics of a trader, cached for a minute."""

from __future__ import annotations

from contextlib import suppress

from shared.domain.analytics import ExecutionAnalytics
from shared.domain.errors import CacheUnavailableError
from shared.ports import AnalyticsCache, AnalyticsRepository


class AnalyticsService:
    """Per-user analytics over N days; the aggregate query runs at most once a minute per key.

    A dashboard polling every few seconds would otherwise run the percentile query on every
    poll. Sixty seconds of staleness is fine for figures over days; a new execution shows up
    within a minute. A cache that cannot be reached only costs the query.
    """

    def __init__(self, repository: AnalyticsRepository, cache: AnalyticsCache) -> None:
        self._repository = repository
        self._cache = cache

    def execution_analytics(self, user_id: str, days: int) -> ExecutionAnalytics:
        """Analytics of ``user_id`` over the last ``days`` days (zeros for an empty window)."""
        with suppress(CacheUnavailableError):
            cached = self._cache.get(user_id, days)
            if cached is not None:
                return cached
        analytics = self._repository.execution_analytics(user_id, days)
        with suppress(CacheUnavailableError):
            self._cache.put(user_id, days, analytics)
        return analytics
