"""Local mode's CloudWatch Logs: the handlers' EMF lines read off stdout into the metric store.

In Lambda, Powertools prints each metric set as one Embedded Metric Format JSON line on stdout
and CloudWatch Logs turns it into metrics. Local mode runs the same handlers, so it does the
same: :class:`EmfTap` stands in for ``sys.stdout`` (in the server process and in each worker
container), keeps every EMF line in Redis (:class:`~shared.adapters.redis.metrics.RedisMetricStore`)
and passes every other line through. The alarms of ``GET /admin/alarms`` are then evaluated on
them (``LocalAlarmStatus``). EMF lines are echoed only with ``order-router run --verbose``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from shared.domain.alarms import MetricPoint, emf_points
from shared.domain.errors import CacheUnavailableError

logger = logging.getLogger("order_router.local.metrics")

Record = Callable[[list[MetricPoint]], object]


class EmfTap:
    """A text stream that records EMF lines and writes the others to ``target``.

    Parameters
    ----------
    target
        The real stream.
    record
        Keeps the metric values of one EMF line (``RedisMetricStore.record``).
    echo
        Also write EMF lines to ``target`` (``--verbose``).
    """

    def __init__(self, target: TextIO, record: Record, *, echo: bool = False) -> None:
        self._target = target
        self._record = record
        self._echo = echo
        # print() writes the text and the newline in two calls; threads interleave, so each
        # thread assembles its own lines.
        self._pending = threading.local()

    def write(self, text: str) -> int:
        """Take ``text``; complete lines are recorded (EMF) or written through."""
        buffered: str = getattr(self._pending, "text", "") + text
        *lines, rest = buffered.split("\n")
        self._pending.text = rest
        for line in lines:
            if not self._take(line):
                self._target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        """Flush the real stream (an unfinished line waits for its newline)."""
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        # encoding, isatty, fileno...: the real stream's.
        return getattr(self._target, name)

    def _take(self, line: str) -> bool:
        if not line.startswith("{") or '"_aws"' not in line:
            return False
        try:
            points = emf_points(json.loads(line))
        except ValueError:
            return False
        if not points:
            return False
        try:
            self._record(points)
        except CacheUnavailableError:
            # Redis down: the metric is lost (as a log line CloudWatch never received would be).
            logger.warning("metric not recorded: redis unavailable")
        if self._echo:
            self._target.write(line + "\n")
        return True


@contextmanager
def tapped(echo: bool = False) -> Iterator[EmfTap]:
    """Tap ``sys.stdout`` for as long as the block runs, recording into this run's Redis."""
    import redis

    from shared.adapters.redis.metrics import RedisMetricStore
    from shared.settings import get_settings

    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=1.0)
    store = RedisMetricStore(client, prefix=settings.redis_key_prefix)
    original = sys.stdout
    tap = EmfTap(original, store.record, echo=echo)
    sys.stdout = tap
    try:
        yield tap
    finally:
        sys.stdout = original
        client.close()


def install(echo: bool = False) -> None:
    """Tap ``sys.stdout`` for the rest of the process (a worker container)."""
    context = tapped(echo)
    context.__enter__()
