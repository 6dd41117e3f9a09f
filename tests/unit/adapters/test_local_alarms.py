"""Local mode's alarms: EMF metrics kept in a real Redis, the stack's definitions evaluated."""

from __future__ import annotations

import pytest
import redis

from shared.adapters.redis.client import RedisGuard
from shared.adapters.redis.metrics import LocalAlarmStatus, RedisMetricStore
from shared.domain.alarms import AlarmState, MetricPoint, MetricSource, definition_of
from shared.domain.errors import MonitoringUnavailableError

SERVICE = (("service", "order-router"),)
NOW_S = 1_800_000_000.0  # on a five-minute boundary


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _status(
    client: redis.Redis, prefix: str, clock: Clock
) -> tuple[RedisMetricStore, LocalAlarmStatus]:
    store = RedisMetricStore(client, prefix=prefix, clock=clock)
    status = LocalAlarmStatus(
        store, namespace="OrderRouter", dimensions={"service": "order-router"}, clock=clock
    )
    return store, status


def _point(
    name: str, at_s: float, value: float, dims: tuple[tuple[str, str], ...] = SERVICE
) -> MetricPoint:
    return MetricPoint("OrderRouter", name, dims, int(at_s * 1000), value)


def test_no_metrics_yet_is_ok_and_aws_metrics_are_not_measured(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN a fresh local mode WHEN its alarms are summarised
    _, status = _status(redis_client, redis_prefix, Clock(NOW_S + 10))
    summary = status.summary()
    by_name = {a.name: a for a in summary.alarms}
    # THEN alarms on the service's own metrics are OK (missing data is not breaching)
    assert by_name["QuarantinedReports"].state is AlarmState.OK
    assert by_name["RoutingLatencyP95"].state is AlarmState.OK
    # AND alarms on AWS services' metrics say they are not measured here, never OK
    for name in ("Http5xxRate", "DlqDepth", "TrackExecutionErrors", "RouteOrderThrottles"):
        defn = definition_of(name)
        assert defn is not None
        assert defn.source is not MetricSource.SERVICE
        assert by_name[name].state is AlarmState.INSUFFICIENT_DATA
        assert "Not measured in local mode" in by_name[name].reason
    assert summary.source == "local"


def test_a_quarantined_report_alarms_and_clears_after_its_period(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN one quarantined report counted at the service level, and one by reason
    clock = Clock(NOW_S + 30)
    store, status = _status(redis_client, redis_prefix, clock)
    store.record(
        [
            _point("QuarantinedReports", NOW_S + 20, 1.0),
            _point("QuarantinedReports", NOW_S + 20, 1.0, (("reason", "X"), *SERVICE)),
        ]
    )
    # WHEN summarised THEN QuarantinedReports is in ALARM since the report
    alarm = {a.name: a for a in status.summary().alarms}["QuarantinedReports"]
    assert alarm.state is AlarmState.ALARM
    assert "1 out of the last 1 datapoints [1 (" in alarm.reason
    assert alarm.updated_at.timestamp() == NOW_S + 20
    # WHEN four minutes have passed THEN it still is (one period after the breach)
    clock.now = NOW_S + 260
    alarm = {a.name: a for a in status.summary().alarms}["QuarantinedReports"]
    assert alarm.state is AlarmState.ALARM
    # WHEN five minutes have passed since the report THEN it is OK again
    clock.now = NOW_S + 321
    alarm = {a.name: a for a in status.summary().alarms}["QuarantinedReports"]
    assert alarm.state is AlarmState.OK


def test_slow_routing_for_three_minutes_alarms(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN routing decisions over 50 ms in three of the last five minutes, plus fast ones
    clock = Clock(NOW_S + 4 * 60 + 5)
    store, status = _status(redis_client, redis_prefix, clock)
    store.record(_point("RoutingLatency", NOW_S + m * 60 + 1, 70.0) for m in (0, 2, 4))
    store.record(_point("RoutingLatency", NOW_S + 1 * 60 + 1, 5.0) for _ in range(3))
    # WHEN summarised THEN RoutingLatencyP95 is in ALARM, OrderLatencyP90 (no data) OK
    by_name = {a.name: a for a in status.summary().alarms}
    assert by_name["RoutingLatencyP95"].state is AlarmState.ALARM
    assert by_name["OrderLatencyP90"].state is AlarmState.OK


def test_values_older_than_the_retention_are_dropped(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # GIVEN a value two hours old and one now
    clock = Clock(NOW_S)
    store, _ = _status(redis_client, redis_prefix, clock)
    store.record([_point("LateFillsAfterTimeout", NOW_S - 7200, 1.0)])
    store.record([_point("LateFillsAfterTimeout", NOW_S, 2.0)])
    # WHEN read back THEN only the recent one is kept
    dims = dict(SERVICE)
    assert store.values("OrderRouter", "LateFillsAfterTimeout", dims, since_ms=0) == [
        (int(NOW_S * 1000), 2.0)
    ]


def test_redis_down_is_unavailable() -> None:
    # GIVEN a Redis nobody listens on
    from local.services import free_port

    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    store = RedisMetricStore(client, guard=RedisGuard())
    status = LocalAlarmStatus(store, namespace="OrderRouter", dimensions={"service": "x"})
    # WHEN summarised THEN the domain's unavailable error (503)
    with pytest.raises(MonitoringUnavailableError):
        status.summary()


def test_the_stdout_tap_keeps_powertools_emf_and_passes_other_lines(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN local mode's tap on a stream, recording into Redis
    import io
    import time

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from local.metrics_tap import EmfTap
    from shared.observability import emit_metric

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    real = io.StringIO()
    store = RedisMetricStore(redis_client, prefix=redis_prefix)
    monkeypatch.setattr("sys.stdout", EmfTap(real, store.record))
    # WHEN a handler's Metrics flush, emit_metric and an ordinary print run
    metrics = Metrics(namespace="OrderRouter", service="order-router")
    metrics.add_metric("QuarantinedReports", MetricUnit.Count, 2)
    metrics.flush_metrics()
    emit_metric("QuarantinedReports", 1, dimensions={"reason": "OVERFILL"})
    print("hello, operator")
    # THEN the service-level count is in the store, the by-reason one apart, and only the
    # ordinary line reached the real stream
    since = int((time.time() - 60) * 1000)
    service = {"service": "order-router"}
    assert [
        v for _, v in store.values("OrderRouter", "QuarantinedReports", service, since_ms=since)
    ] == [2.0]
    by_reason = {**service, "reason": "OVERFILL"}
    assert [
        v for _, v in store.values("OrderRouter", "QuarantinedReports", by_reason, since_ms=since)
    ] == [1.0]
    assert real.getvalue() == "hello, operator\n"
