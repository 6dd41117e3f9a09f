"""Local mode's CloudWatch: the handlers' EMF metrics kept in Redis, their alarms evaluated.

Local mode has no CloudWatch, but its handlers print the same Embedded Metric Format lines as in
Lambda; ``local/metrics_tap.py`` reads them (as CloudWatch Logs does) and :class:`RedisMetricStore`
keeps their values for an hour. :class:`LocalAlarmStatus` then evaluates the same
:data:`~shared.domain.alarms.ALARM_DEFINITIONS` the stack deploys, with CloudWatch's rules
(:func:`~shared.domain.alarms.evaluate`). Redis is shared by the local server and its worker
processes, so a metric emitted by any of them counts.

Key layout (under ``redis_key_prefix``)::

    metrics:{namespace}:{name}:{dim=value,...}   ZSET  "<epoch ms>:<value>:<nonce>" -> epoch ms

Alarms over AWS services' metrics (HTTP API 5xx, DLQ depth, Lambda errors and throttles) have no
local counterpart: they are ``INSUFFICIENT_DATA`` with that reason, never a made-up ``OK``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

import redis

from shared.adapters.redis.client import RedisGuard
from shared.domain.alarms import (
    ALARM_DEFINITIONS,
    AlarmDefinition,
    AlarmState,
    AlarmSummary,
    AlarmView,
    MetricPoint,
    MetricSource,
    evaluate,
    view_of,
)
from shared.domain.errors import CacheUnavailableError, MonitoringUnavailableError

RETENTION_S = 3600
"""Longer than the longest alarm window (5 periods of 5 minutes)."""
SOURCE = "local"


def _dimension_text(dimensions: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{name}={value}" for name, value in sorted(dimensions))


class RedisMetricStore:
    """Metric values by namespace, name and exact dimension set, kept for :data:`RETENTION_S`.

    Parameters
    ----------
    client
        A redis-py client.
    prefix
        ``Settings.redis_key_prefix``.
    guard
        Translates Redis errors into ``CacheUnavailableError``.
    clock
        Epoch seconds (tests pass a fake).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "",
        guard: RedisGuard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._guard = guard or RedisGuard()
        self._clock = clock

    def key(self, namespace: str, name: str, dimensions: Iterable[tuple[str, str]]) -> str:
        """The sorted set of one metric (one exact dimension set, as CloudWatch identifies it)."""
        return f"{self._prefix}metrics:{namespace}:{name}:{_dimension_text(dimensions)}"

    def record(self, points: Iterable[MetricPoint]) -> int:
        """Keep ``points``; drop values older than the retention. Returns how many were kept.

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        by_key: dict[str, dict[str, int]] = {}
        for point in points:
            member = f"{point.at_ms}:{point.value!r}:{os.urandom(4).hex()}"
            key = self.key(point.namespace, point.name, point.dimensions)
            by_key.setdefault(key, {})[member] = point.at_ms
        if not by_key:
            return 0
        horizon_ms = int((self._clock() - RETENTION_S) * 1000)
        with self._guard.call():
            pipe = self._client.pipeline(transaction=False)
            for key, members in by_key.items():
                pipe.zadd(key, members)
                pipe.zremrangebyscore(key, "-inf", horizon_ms)
                pipe.expire(key, RETENTION_S)
            pipe.execute()
        return sum(len(m) for m in by_key.values())

    def values(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        *,
        since_ms: int,
    ) -> list[tuple[int, float]]:
        """``(epoch ms, value)`` of one metric since ``since_ms``.

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        key = self.key(namespace, name, dimensions.items())
        with self._guard.call():
            raw: list[bytes] = self._client.zrangebyscore(key, since_ms, "+inf")  # type: ignore[assignment]
        found: list[tuple[int, float]] = []
        for member in raw:
            at, value, _ = member.decode().split(":", 2)
            found.append((int(at), float(value)))
        return found


class LocalAlarmStatus:
    """The :class:`~shared.ports.AlarmStatus` of local mode: the stack's alarms, evaluated here.

    Parameters
    ----------
    store
        Where the tapped EMF metrics are.
    namespace, dimensions
        The service's metric namespace and dimensions (``OrderRouter``, ``{"service": ...}``),
        as the stack's alarms use them.
    clock
        Epoch seconds.
    """

    def __init__(
        self,
        store: RedisMetricStore,
        *,
        namespace: str,
        dimensions: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._namespace = namespace
        self._dimensions = dict(dimensions)
        self._clock = clock

    def summary(self) -> AlarmSummary:
        """Every defined alarm, evaluated now on the metrics local mode emitted.

        Raises
        ------
        MonitoringUnavailableError
            Redis cannot be read (503).
        """
        now_ms = int(self._clock() * 1000)
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        try:
            views = tuple(self._view(d, now_ms, now) for d in ALARM_DEFINITIONS)
        except CacheUnavailableError as exc:
            raise MonitoringUnavailableError("local metric store unavailable") from exc
        return AlarmSummary(source=SOURCE, evaluated_at=now, alarms=views)

    def _view(self, definition: AlarmDefinition, now_ms: int, now: datetime) -> AlarmView:
        if definition.source is not MetricSource.SERVICE:
            return view_of(
                definition,
                AlarmState.INSUFFICIENT_DATA,
                f"Not measured in local mode: {definition.metric} is an AWS "
                f"{definition.source.value} metric that exists only in the deployed stack.",
                now,
            )
        since_ms = now_ms - definition.period_s * 1000 * definition.evaluation_periods
        points = self._store.values(
            self._namespace, definition.metric, self._dimensions, since_ms=since_ms
        )
        outcome = evaluate(definition, points, now_ms=now_ms)
        # Evaluated on read: the state holds as of now; an ALARM dates from its latest breach.
        updated = (
            datetime.fromtimestamp(max(at for at, _ in outcome.breaching) / 1000, UTC)
            if outcome.breaching
            else now
        )
        return view_of(definition, outcome.state, outcome.reason, updated)
