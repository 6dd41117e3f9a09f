"""AnalyticsService's cache policy, over in-memory fakes of its two ports."""

from __future__ import annotations

from shared.domain.analytics import ExecutionAnalytics, ExecutionStats
from shared.domain.errors import CacheUnavailableError
from shared.services.analytics import AnalyticsService


class CountingRepository:
    """Answers with analytics whose order count is the number of queries so far."""

    def __init__(self) -> None:
        self.queries = 0

    def execution_analytics(self, user_id: str, days: int) -> ExecutionAnalytics:
        self.queries += 1
        return ExecutionAnalytics(
            user_id=user_id, days=days, summary=ExecutionStats(orders=self.queries)
        )


class DictCache:
    """A cache that never expires; ``down`` makes every call fail like an unreachable Redis."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, int], ExecutionAnalytics] = {}
        self.down = False

    def get(self, user_id: str, days: int) -> ExecutionAnalytics | None:
        if self.down:
            raise CacheUnavailableError("redis down")
        return self.entries.get((user_id, days))

    def put(self, user_id: str, days: int, analytics: ExecutionAnalytics) -> None:
        if self.down:
            raise CacheUnavailableError("redis down")
        self.entries[(user_id, days)] = analytics


def test_a_second_request_within_the_ttl_is_answered_from_the_cache() -> None:
    # GIVEN a service over a counting repository and a working cache
    repository, cache = CountingRepository(), DictCache()
    service = AnalyticsService(repository, cache)
    # WHEN the same trader asks for the same window twice
    first = service.execution_analytics("u1", 30)
    second = service.execution_analytics("u1", 30)
    # THEN the query ran once and both answers are the same
    assert repository.queries == 1
    assert first == second


def test_windows_and_traders_are_cached_apart() -> None:
    # GIVEN a service with one cached answer
    repository, cache = CountingRepository(), DictCache()
    service = AnalyticsService(repository, cache)
    service.execution_analytics("u1", 30)
    # WHEN another window and another trader are asked for
    other_days = service.execution_analytics("u1", 7)
    other_user = service.execution_analytics("u2", 30)
    # THEN each ran its own query and carries its own key
    assert repository.queries == 3
    assert (other_days.user_id, other_days.days) == ("u1", 7)
    assert (other_user.user_id, other_user.days) == ("u2", 30)


def test_an_unreachable_cache_costs_the_query_not_the_answer() -> None:
    # GIVEN a cache that cannot be reached
    repository, cache = CountingRepository(), DictCache()
    cache.down = True
    service = AnalyticsService(repository, cache)
    # WHEN analytics are asked for twice
    first = service.execution_analytics("u1", 30)
    second = service.execution_analytics("u1", 30)
    # THEN both are answered from the repository, one query each
    assert (first.summary.orders, second.summary.orders) == (1, 2)
    assert repository.queries == 2
