"""Broker profiles cached in Redis under ``profile:{broker}:{symbol}``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis
from cachetools import LRUCache

from shared.adapters.redis.client import RedisGuard
from shared.domain.models import BrokerProfile

_NO_PROFILE = b"null"

# Write each entry unless the cache already holds a profile built from more samples: two
# writers racing (a tracker and a read-through refresh) can then never leave the older profile
# in the cache for a whole TTL. ARGV = ttl, then (value, sample_count) per key.
_PUT_IF_NEWER = """
local written = 0
for i, key in ipairs(KEYS) do
  local value = ARGV[2 * i]
  local samples = tonumber(ARGV[2 * i + 1])
  local current = redis.call('GET', key)
  local keep = false
  if current and current ~= 'null' and samples >= 0 then
    local ok, decoded = pcall(cjson.decode, current)
    if ok and tonumber(decoded['sample_count'] or 0) > samples then keep = true end
  end
  if not keep then
    redis.call('SET', key, value, 'EX', ARGV[1])
    written = written + 1
  end
end
return written
"""


class RedisProfileCache:
    """:class:`shared.ports.ProfileCache`: one MGET for N brokers, one pipeline to write.

    A broker without a profile for the symbol is cached as ``null`` too, so a symbol that only
    some brokers cover does not send every read to Postgres.
    """

    def __init__(
        self, client: redis.Redis, *, ttl_s: int, prefix: str = "", guard: RedisGuard | None = None
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix
        self._guard = guard or RedisGuard()
        self._put_if_newer = client.register_script(_PUT_IF_NEWER)
        # Parsing a profile costs more than fetching it; most reads return the bytes the last
        # read returned, so keep the parsed model per key and reuse it while the bytes match.
        self._parsed: LRUCache[str, tuple[bytes | str, BrokerProfile]] = LRUCache(maxsize=4096)

    def clear(self) -> int:
        """Forget every cached profile under this prefix (an operator's reset); return how many."""
        return _delete_matching(self._client, f"{self._prefix}profile:*")

    def evict_broker(self, broker_id: str) -> int:
        """Forget every cached profile of ``broker_id`` (its routing status changed).

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        with self._guard.call():
            return _delete_matching(self._client, f"{self._prefix}profile:{broker_id}:*")

    def key(self, broker_id: str, symbol: str) -> str:
        """The cache key of one profile."""
        return f"{self._prefix}profile:{broker_id}:{symbol}"

    def keys(self, symbol: str, broker_ids: Sequence[str]) -> list[str]:
        """The cache keys of ``broker_ids``' profiles of ``symbol``, in order."""
        return [self.key(b, symbol) for b in broker_ids]

    def decode(
        self, symbol: str, broker_ids: Sequence[str], values: Sequence[bytes | str | None]
    ) -> dict[str, BrokerProfile | None]:
        """The entries of an MGET of :meth:`keys` (a missing key is absent from the result)."""
        found: dict[str, BrokerProfile | None] = {}
        for broker_id, raw in zip(broker_ids, values, strict=True):
            if raw is None:
                continue
            found[broker_id] = None if raw == _NO_PROFILE else self._parse(broker_id, symbol, raw)
        return found

    def _parse(self, broker_id: str, symbol: str, raw: bytes | str) -> BrokerProfile:
        key = f"{broker_id}:{symbol}"
        memo = self._parsed.get(key)
        if memo is not None and memo[0] == raw:
            return memo[1]
        profile = BrokerProfile.model_validate_json(raw)
        self._parsed[key] = (raw, profile)
        return profile

    def put_many(self, symbol: str, profiles: Mapping[str, BrokerProfile | None]) -> None:
        """Write entries with the TTL in one round trip, never replacing a newer profile."""
        if not profiles:
            return
        keys: list[str] = []
        args: list[bytes | int] = [self._ttl_s]
        for broker_id, profile in profiles.items():
            keys.append(self.key(broker_id, symbol))
            if profile is None:
                args += [_NO_PROFILE, -1]
            else:
                args += [profile.model_dump_json().encode(), profile.sample_count]
        with self._guard.call():
            self._put_if_newer(keys=keys, args=args)


def _delete_matching(client: redis.Redis, pattern: str) -> int:
    keys = list(client.scan_iter(match=pattern, count=1000))
    return int(client.delete(*keys)) if keys else 0
