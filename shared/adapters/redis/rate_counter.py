"""Per-broker order counts per second in Redis, shared by every Lambda container."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

import redis

from shared.adapters.redis.client import RedisGuard
from shared.domain.errors import CacheUnavailableError


class RedisRateCounter:
    """:class:`shared.ports.RateCounter`: one key per broker and second, expiring after 2 s.

    Rate limits protect the broker relationship, not our data: when Redis is down nothing is
    counted and routing goes on (the broker's own limit still answers with a reject, which
    cascades). The counts are read with the profiles, in one MGET
    (:class:`shared.adapters.redis.routing_inputs.RedisRoutingInputs`).
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

    def _key(self, broker_id: str, second: int) -> str:
        return f"{self._prefix}rate:{broker_id}:{second}"

    def keys(self, broker_ids: Sequence[str]) -> list[str]:
        """The counter keys of ``broker_ids`` for the current second, in order."""
        second = int(self._clock())
        return [self._key(b, second) for b in broker_ids]

    @staticmethod
    def decode(broker_ids: Sequence[str], values: Sequence[bytes | str | None]) -> dict[str, int]:
        """Counts from an MGET of :meth:`keys` (brokers sent nothing this second are absent)."""
        return {b: int(v) for b, v in zip(broker_ids, values, strict=True) if v is not None}

    def hit(self, broker_ids: Sequence[str]) -> None:
        """Count one order sent now per entry of ``broker_ids`` (one round trip for all)."""
        if not broker_ids:
            return
        second = int(self._clock())
        try:
            with self._guard.call():
                pipe = self._client.pipeline(transaction=False)
                for broker_id, sent in Counter(broker_ids).items():
                    key = self._key(broker_id, second)
                    pipe.incrby(key, sent)
                    pipe.expire(key, 2)
                pipe.execute()
        except CacheUnavailableError:
            return
