"""Costs a busy machine barely moves: CPU seconds (ours and Postgres's) and round trips.

Wall-clock throughput on a shared 2-core machine swings with the neighbours' load; the CPU
time a piece of work burns and the number of times it waits on the server do not. A benchmark
wraps the work in :func:`measure_costs` and reports both next to its timings.

- client CPU: ``resource.getrusage(RUSAGE_SELF)`` (user + system) of this process;
- server CPU: user + system ticks of this database's client backends, from ``/proc/<pid>/stat``
  (Linux; ``None`` elsewhere), the backends listed by ``pg_stat_activity``;
- round trips: the times psycopg waited for a server's answer (``Connection.wait``, wrapped):
  a statement or commit outside a pipeline, a pipeline's sync (a fetch or its exit). Inside a
  pipeline a statement is only queued (``wait`` on its send does not wait for an answer), so
  it is not counted; ``statements`` counts every statement sent;
- Redis round trips: each command outside a pipeline and each pipeline's ``execute``
  (redis-py's ``Redis.execute_command`` and ``Pipeline.execute``, wrapped).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import redis.client

BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
    AND pid <> pg_backend_pid()
"""


@dataclass
class Costs:
    """What the measured block cost; filled in when the block ends."""

    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    round_trips: int = 0
    statements: int = 0
    redis_round_trips: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def per(self, units: int) -> dict[str, float | None]:
        """The costs per unit of work (a batch, a report), in ms and round trips."""
        server = None if self.server_cpu_s is None else self.server_cpu_s / units * 1e3
        return {
            "client_cpu_ms": round(self.client_cpu_s / units * 1e3, 3),
            "server_cpu_ms": None if server is None else round(server, 3),
            "round_trips": round(self.round_trips / units, 2),
            "statements": round(self.statements / units, 2),
            "redis_round_trips": round(self.redis_round_trips / units, 2),
        }


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_ticks(database_url: str) -> int | None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(BACKENDS).fetchall()]
    ticks = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists():
            return None  # not on this machine's /proc (a remote server)
        # Fields after the command (which may hold spaces): utime and stime are 14th and 15th.
        fields = stat.read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks


@contextmanager
def measure_costs(database_url: str) -> Iterator[Costs]:
    """Measure the block's client CPU, its database's backends' CPU and psycopg's round trips.

    The backends must be connected before the block starts (a warm pool) to be counted; the
    probe's own connection is opened outside the measured span.
    """
    costs = Costs()
    original = psycopg.Connection.wait

    def counted(self: psycopg.Connection[Any], gen: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(gen, "__qualname__", "")
        queued = getattr(self, "_pipeline", None) is not None
        if name.endswith(
            ("_execute_gen", "_executemany_gen_pipeline", "_executemany_gen_no_pipeline")
        ):
            costs.statements += 1
        if name.endswith(("_fetch_gen", "_exit_gen")) or not (
            queued or name.endswith("_enter_gen")
        ):
            costs.round_trips += 1
        return original(self, gen, *args, **kwargs)

    command, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

    def sent(through: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            costs.redis_round_trips += 1
            return through(*args, **kwargs)

        return wrapper

    server_before = _server_ticks(database_url)
    client_before = _client_cpu()
    psycopg.Connection.wait = counted  # type: ignore[method-assign]
    redis.Redis.execute_command = sent(command)  # type: ignore[method-assign]
    redis.client.Pipeline.execute = sent(pipeline)  # type: ignore[method-assign]
    try:
        yield costs
    finally:
        psycopg.Connection.wait = original  # type: ignore[method-assign]
        redis.Redis.execute_command = command  # type: ignore[method-assign]
        redis.client.Pipeline.execute = pipeline  # type: ignore[method-assign]
        costs.client_cpu_s = _client_cpu() - client_before
        server_after = _server_ticks(database_url)
        if server_before is not None and server_after is not None:
            costs.server_cpu_s = (server_after - server_before) / os.sysconf("SC_CLK_TCK")
