"""redis-py client creation and the translation of driver errors into domain errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.domain.errors import CacheUnavailableError
from shared.settings import Settings


def create_redis(settings: Settings) -> redis.Redis:
    """A client with short timeouts: the cache must never be slower than the database behind it.

    redis-py parses replies with hiredis when it is installed (it is a dependency), and
    connects lazily on the first command, so creating the client does no I/O.
    """
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        # No retries: a failed cache call falls back to Postgres at once (RedisGuard) instead
        # of retrying with backoff for seconds while the request waits.
        retry=Retry(NoBackoff(), 0),
    )


class RedisGuard:
    """Translates Redis failures and stops calling a dead Redis for a while.

    Without the pause, every request would pay the connect timeout while Redis is down; with it,
    one request pays and the next ``cooldown_s`` seconds go straight to Postgres. A dependency
    such as pybreaker would add thread-safety machinery we do not need in a single-threaded
    Lambda for ten lines of state.
    """

    def __init__(self, cooldown_s: float = 5.0) -> None:
        self._cooldown_s = cooldown_s
        self._down_until = 0.0

    @contextmanager
    def call(self) -> Iterator[None]:
        """Run Redis commands; raise :class:`CacheUnavailableError` on failure or in cooldown."""
        if time.monotonic() < self._down_until:
            raise CacheUnavailableError("redis marked down; skipping")
        try:
            yield
        except redis.RedisError as exc:
            self._down_until = time.monotonic() + self._cooldown_s
            raise CacheUnavailableError(f"redis unavailable: {exc.__class__.__name__}") from exc
