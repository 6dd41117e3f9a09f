"""What every benchmark shares: throwaway servers, a migrated database, timing and the result file.

Benchmarks start their own PostgreSQL and Redis (or use DATABASE_URL / REDIS_URL) exactly like
the test suite, so a figure never depends on the state of the machine's own services.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.services import EmbeddedPostgres, EmbeddedRedis, scratch_database
from shared.adapters.postgres.migrations import apply_migrations
from shared.settings import Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class BenchServices:
    """URLs of a migrated database of the benchmark's own and of a Redis server."""

    database_url: str
    redis_url: str
    redis_prefix: str

    def settings(self, **overrides: Any) -> Settings:
        """Test-stage settings pointing at these servers (``overrides`` for the rest)."""
        return Settings(
            stage="test",
            database_url=self.database_url,
            redis_url=self.redis_url,
            redis_key_prefix=self.redis_prefix,
            **overrides,
        )


@contextmanager
def bench_services() -> Iterator[BenchServices]:
    """Start (or reuse from the environment) Postgres and Redis, with a fresh migrated database."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        pg = None
        admin_url = os.environ.get("DATABASE_URL")
        if not admin_url:
            pg = EmbeddedPostgres(Path(tmp) / "pg").start()
            admin_url = pg.admin_url
        rd = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            rd = EmbeddedRedis().start()
            redis_url = rd.url
        try:
            with scratch_database(admin_url, "router_bench") as database_url:
                apply_migrations(database_url)
                yield BenchServices(database_url, redis_url, f"bench:{uuid.uuid4().hex[:8]}:")
        finally:
            if rd is not None:
                rd.stop()
            if pg is not None:
                pg.stop()


def time_calls(fn: Callable[[int], Any], iterations: int, warmup: int = 50) -> list[float]:
    """Run ``fn(i)`` ``iterations`` times after a warm-up; return each call's seconds."""
    for i in range(warmup):
        fn(-1 - i)
    samples = []
    for i in range(iterations):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def time_interleaved(
    fns: Sequence[Callable[[int], Any]], iterations: int, warmup: int = 50
) -> list[list[float]]:
    """Time several calls in turn, ``iterations`` rounds; return each one's seconds.

    For a ratio between two measures: each round runs both, so a machine that slows down for a
    while (a noisy neighbour on a 2-core VM) slows both alike instead of skewing one of them.
    """
    for i in range(warmup):
        for fn in fns:
            fn(-1 - i)
    samples: list[list[float]] = [[] for _ in fns]
    for i in range(iterations):
        for fn, taken in zip(fns, samples, strict=True):
            start = time.perf_counter()
            fn(i)
            taken.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``samples``, by the inclusive method."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(pct) - 1]


def summary_us(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in microseconds and the sample count."""
    return {
        "p50_us": round(percentile(samples, 50) * 1e6, 1),
        "p95_us": round(percentile(samples, 95) * 1e6, 1),
        "p99_us": round(percentile(samples, 99) * 1e6, 1),
        "n": len(samples),
    }


def summary_ms(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds and the sample count."""
    return {
        "p50_ms": round(percentile(samples, 50) * 1e3, 3),
        "p95_ms": round(percentile(samples, 95) * 1e3, 3),
        "p99_ms": round(percentile(samples, 99) * 1e3, 3),
        "n": len(samples),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the machine it ran on) and print it."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    meta = {
        "_meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    path.write_text(json.dumps({**data, **meta}, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    return path
