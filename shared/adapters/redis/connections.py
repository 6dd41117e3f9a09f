"""The WebSocket connection registry in Redis: who is connected, on which connections, wanting what.

Key layout (every key starts with ``redis_key_prefix``)::

    ws:conn:{connection_id}   HASH  user=<user id>, at=<connected epoch s>,
                                    role=operator (ADMIN without TRADER only),
                                    o:<orderId>=1 ..., s:<symbol>=1 ...   (the filters)
    ws:user:{user_id}         SET   connection ids of the user (traders' connections only)
    ws:symbol:{symbol}        SET   connection ids subscribed to the symbol (PROFILE_UPDATE)
    ws:active                 ZSET  connection id -> expiry epoch s (count_active)

Every per-connection key lives 2 hours (API Gateway's maximum connection duration) and the TTL
is refreshed on activity, so a record whose ``$disconnect`` was lost disappears on its own; a
push to it meanwhile gets ``GoneException`` and removes it. Filters are fields of the
connection's hash so one ``HGETALL`` returns the owner and the filters, and ``HSET``/``HDEL``
change them atomically without a read-modify-write. Sets may briefly name connections whose hash
has expired; readers skip and remove those.

Pipelines are non-transactional: the keys of one connection hash to different cluster slots,
and the only cross-key invariant we need ("a set member without a hash is stale") is repaired
by readers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping

import redis

from shared.adapters.redis.client import RedisGuard
from shared.domain.connections import ConnectionRecord

CONNECTION_TTL_S = 7200
"""API Gateway closes every WebSocket connection after 2 hours."""

_USER = b"user"
_AT = b"at"
_ROLE = b"role"
_OPERATOR = b"operator"
_ORDER = "o:"
_SYMBOL = "s:"


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record(
    connection_id: str, fields: Mapping[bytes, bytes] | Mapping[bytes | str, bytes | str]
) -> ConnectionRecord | None:
    user = fields.get(_USER)
    if user is None:
        return None
    order_ids: set[str] = set()
    symbols: set[str] = set()
    for raw_name in fields:
        name = _decode(raw_name)
        if name.startswith(_ORDER):
            order_ids.add(name[len(_ORDER) :])
        elif name.startswith(_SYMBOL):
            symbols.add(name[len(_SYMBOL) :])
    role = fields.get(_ROLE)
    trader = role is None or _decode(role) != _OPERATOR.decode()
    return ConnectionRecord(
        connection_id, _decode(user), frozenset(order_ids), frozenset(symbols), trader
    )


class RedisConnectionRegistry:
    """Connection id -> user and filters, user -> connection ids, with a 2-hour TTL.

    Parameters
    ----------
    client
        A redis-py client (bytes responses).
    prefix
        ``Settings.redis_key_prefix``.
    ttl_s
        Lifetime of a record after its last activity.
    guard
        Translates Redis errors into :class:`~shared.domain.errors.CacheUnavailableError`.
    clock
        Epoch seconds (tests pass a fake).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "",
        ttl_s: int = CONNECTION_TTL_S,
        guard: RedisGuard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._guard = guard or RedisGuard()
        self._clock = clock

    # Keys ---------------------------------------------------------------------------------

    def connection_key(self, connection_id: str) -> str:
        """The hash of one connection."""
        return f"{self._prefix}ws:conn:{connection_id}"

    def user_key(self, user_id: str) -> str:
        """The set of a user's connection ids."""
        return f"{self._prefix}ws:user:{user_id}"

    def symbol_key(self, symbol: str) -> str:
        """The set of connection ids subscribed to ``symbol``."""
        return f"{self._prefix}ws:symbol:{symbol}"

    @property
    def active_key(self) -> str:
        """The sorted set of live connection ids scored by expiry."""
        return f"{self._prefix}ws:active"

    # Writes -------------------------------------------------------------------------------

    def clear(self) -> int:
        """Forget every connection under this prefix (the sockets of a stopped run).

        Returns
        -------
        int
            How many keys were deleted.
        """
        keys = list(self._client.scan_iter(match=f"{self._prefix}ws:*", count=1000))
        return int(self._client.delete(*keys)) if keys else 0

    def register(self, connection_id: str, user_id: str, *, trader: bool = True) -> None:
        """Record a new connection of ``user_id`` (replacing any record under that id).

        An operator's connection (``trader=False``) is marked so and left out of the user's
        set: order pushes look a user's connections up there, so it can never receive one.

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        now = self._clock()
        key = self.connection_key(connection_id)
        with self._guard.call():
            pipe = self._client.pipeline(transaction=False)
            pipe.delete(key)
            fields: dict[bytes, str | int] = {_USER: user_id, _AT: int(now)}
            if not trader:
                fields[_ROLE] = _OPERATOR.decode()
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl_s)
            if trader:
                pipe.sadd(self.user_key(user_id), connection_id)
                pipe.expire(self.user_key(user_id), self._ttl_s)
            pipe.zadd(self.active_key, {connection_id: now + self._ttl_s})
            pipe.execute()

    def touch(self, connection_id: str) -> ConnectionRecord | None:
        """Refresh the TTL of a connection's keys after activity; ``None`` if it is unknown.

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        record = self.get(connection_id)
        if record is None:
            return None
        self._refresh(record)
        return record

    def subscribe(
        self,
        connection_id: str,
        *,
        order_ids: Iterable[str] = (),
        symbols: Iterable[str] = (),
    ) -> ConnectionRecord | None:
        """Add filters to a connection; return the updated record (``None`` if unknown).

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        more_orders, more_symbols = frozenset(order_ids), frozenset(symbols)
        return self._refilter(
            connection_id, lambda r: (r.order_ids | more_orders, r.symbols | more_symbols)
        )

    def unsubscribe(
        self,
        connection_id: str,
        *,
        order_ids: Collection[str] | None = None,
        symbols: Collection[str] | None = None,
    ) -> ConnectionRecord | None:
        """Remove filters; with neither argument, remove them all (back to "everything").

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        if order_ids is None and symbols is None:
            return self._refilter(connection_id, lambda r: (frozenset(), frozenset()))
        fewer_orders, fewer_symbols = frozenset(order_ids or ()), frozenset(symbols or ())
        return self._refilter(
            connection_id, lambda r: (r.order_ids - fewer_orders, r.symbols - fewer_symbols)
        )

    def remove(self, connection_id: str) -> str | None:
        """Forget a connection (``$disconnect`` or ``GoneException``); return its user id.

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        record = self.get(connection_id)
        with self._guard.call():
            pipe = self._client.pipeline(transaction=False)
            pipe.delete(self.connection_key(connection_id))
            pipe.zrem(self.active_key, connection_id)
            if record is not None:
                pipe.srem(self.user_key(record.user_id), connection_id)
                for symbol in record.symbols:
                    pipe.srem(self.symbol_key(symbol), connection_id)
            pipe.execute()
        return record.user_id if record is not None else None

    # Reads --------------------------------------------------------------------------------

    def get(self, connection_id: str) -> ConnectionRecord | None:
        """The record of one connection, or ``None``.

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        with self._guard.call():
            fields: dict[bytes, bytes] = self._client.hgetall(  # type: ignore[assignment]
                self.connection_key(connection_id)
            )
        return _record(connection_id, fields)

    def connections_of(self, user_id: str) -> list[ConnectionRecord]:
        """Every live connection of ``user_id`` (two round trips, whatever their number).

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        records = self._members(self.user_key(user_id))
        # An operator's connection never takes a trader's updates, even if listed by mistake.
        return [r for r in records if r.user_id == user_id and r.trader]

    def subscribers_of_symbol(self, symbol: str) -> list[ConnectionRecord]:
        """Every live connection subscribed to ``symbol``, whoever owns it.

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        return [r for r in self._members(self.symbol_key(symbol)) if symbol in r.symbols]

    def live_connections(self) -> list[ConnectionRecord]:
        """Every live connection, whoever owns it (a broadcast such as ``BROKER_STATUS``).

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        with self._guard.call():
            members: list[bytes] = self._client.zrangebyscore(  # type: ignore[assignment]
                self.active_key, self._clock(), "+inf"
            )
            ids = sorted(_decode(m) for m in members)
            if not ids:
                return []
            pipe = self._client.pipeline(transaction=False)
            for connection_id in ids:
                pipe.hgetall(self.connection_key(connection_id))
            hashes: list[dict[bytes, bytes]] = pipe.execute()
        found = (_record(c, fields) for c, fields in zip(ids, hashes, strict=True))
        return [r for r in found if r is not None]

    def count_active(self) -> int:
        """How many connections are live (entries past their TTL are dropped first).

        Raises
        ------
        CacheUnavailableError
            Redis cannot be reached.
        """
        with self._guard.call():
            pipe = self._client.pipeline(transaction=False)
            pipe.zremrangebyscore(self.active_key, "-inf", self._clock())
            pipe.zcard(self.active_key)
            _, count = pipe.execute()
        return int(count)

    # Internals ----------------------------------------------------------------------------

    def _members(self, set_key: str) -> list[ConnectionRecord]:
        with self._guard.call():
            ids = sorted(_decode(m) for m in self._client.smembers(set_key))
            if not ids:
                return []
            pipe = self._client.pipeline(transaction=False)
            for connection_id in ids:
                pipe.hgetall(self.connection_key(connection_id))
            hashes: list[dict[bytes, bytes]] = pipe.execute()
            records: list[ConnectionRecord] = []
            stale: list[str] = []
            for connection_id, fields in zip(ids, hashes, strict=True):
                record = _record(connection_id, fields)
                if record is None:
                    stale.append(connection_id)
                else:
                    records.append(record)
            if stale:
                # The hash expired (a lost $disconnect): repair the set while we are here.
                self._client.srem(set_key, *stale)
        return records

    def _refilter(
        self,
        connection_id: str,
        change: Callable[[ConnectionRecord], tuple[frozenset[str], frozenset[str]]],
    ) -> ConnectionRecord | None:
        """Give a connection the ``(order_ids, symbols)`` filters ``change`` makes of its own."""
        record = self.get(connection_id)
        if record is None:
            return None
        orders, symbols = change(record)
        added = [f"{_ORDER}{o}" for o in orders - record.order_ids]
        added += [f"{_SYMBOL}{s}" for s in symbols - record.symbols]
        dropped = [f"{_ORDER}{o}" for o in record.order_ids - orders]
        dropped += [f"{_SYMBOL}{s}" for s in record.symbols - symbols]
        key = self.connection_key(connection_id)
        with self._guard.call():
            pipe = self._client.pipeline(transaction=False)
            if added:
                pipe.hset(key, mapping=dict.fromkeys(added, 1))
            if dropped:
                pipe.hdel(key, *dropped)
            # The symbol sets index who to tell about a symbol's profile updates.
            for symbol in symbols - record.symbols:
                pipe.sadd(self.symbol_key(symbol), connection_id)
            for symbol in record.symbols - symbols:
                pipe.srem(self.symbol_key(symbol), connection_id)
            pipe.execute()
        updated = ConnectionRecord(connection_id, record.user_id, orders, symbols, record.trader)
        self._refresh(updated)
        return updated

    def _refresh(self, record: ConnectionRecord) -> None:
        now = self._clock()
        with self._guard.call():
            pipe = self._client.pipeline(transaction=False)
            pipe.expire(self.connection_key(record.connection_id), self._ttl_s)
            # A set must outlive every member, so it is extended with each member's activity.
            pipe.expire(self.user_key(record.user_id), self._ttl_s)
            for symbol in record.symbols:
                pipe.expire(self.symbol_key(symbol), self._ttl_s)
            pipe.zadd(self.active_key, {record.connection_id: now + self._ttl_s}, xx=True)
            pipe.execute()
