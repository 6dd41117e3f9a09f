"""market_refresh: the scheduled market-data jobs (docs/market-data.md).

EventBridge Scheduler invokes it with ``{"job": "instruments"}`` before the market opens (the
day's instrument master and price bands) and ``{"job": "statistics"}`` every minute of the
session (the routed symbols' spread, depth, volume and last price in the broker profiles).
An unreachable market-data source is a reported outcome, not a failed invocation: the next run
tries again, and stale data is excluded with its reason meanwhile.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import shared.wiring
from shared.domain.errors import DataUnavailableError, MarketDataUnavailableError
from shared.observability import NAMESPACE, SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

JOBS = ("instruments", "statistics")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run the job the schedule names; answer its counts (or why it could not run)."""
    job = event.get("job") if isinstance(event, dict) else None
    if job not in JOBS:
        logger.error("unknown market job", job=job)
        return {"job": job, "ok": False, "error": f"job must be one of {', '.join(JOBS)}"}
    refresh = shared.wiring.get_wiring().market_refresh
    try:
        if job == "instruments":
            loaded = refresh.load_instruments()
            metrics.add_metric("InstrumentsWritten", MetricUnit.Count, loaded.written)
            metrics.add_metric("InstrumentRowsRefused", MetricUnit.Count, loaded.bad_rows)
            metrics.add_metric("InstrumentsWithoutBand", MetricUnit.Count, loaded.no_band)
            return {"job": job, "ok": True, **loaded.as_dict()}
        refreshed = refresh.refresh_statistics()
        metrics.add_metric("MarketSymbolsRefreshed", MetricUnit.Count, refreshed.refreshed)
        metrics.add_metric("MarketSymbolsStale", MetricUnit.Count, refreshed.stale)
        metrics.add_metric("MarketSymbolsUnavailable", MetricUnit.Count, refreshed.unavailable)
        return {"job": job, "ok": True, **refreshed.as_dict(), "health": _probe_health()}
    except MarketDataUnavailableError as exc:
        metrics.add_metric("MarketRefreshFailed", MetricUnit.Count, 1)
        logger.error("market data unavailable", job=job, reason=str(exc))
        return {"job": job, "ok": False, "error": str(exc)}


def _probe_health() -> dict[str, Any]:
    """Probe the brokers in an outage episode (docs/routing-engine.md, "Outages").

    Its failure is reported, never the job's: market statistics were refreshed either way.
    """
    try:
        probed = shared.wiring.get_wiring().health_probe.run()
    except DataUnavailableError as exc:
        metrics.add_metric("HealthProbeFailed", MetricUnit.Count, 1)
        logger.error("health probe failed", reason=str(exc))
        return {"ok": False, "error": str(exc)}
    metrics.add_metric("BrokersRecovered", MetricUnit.Count, len(probed.recovered))
    metrics.add_metric("BrokersStillDown", MetricUnit.Count, len(probed.down))
    return {"ok": True, **probed.as_dict()}
