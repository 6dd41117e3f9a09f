"""Idempotent replay: a repeated key gets the first request's stored answer, or a conflict."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from shared.domain.errors import ConflictError
from shared.ports import OrderRepository
from shared.services.schemas import OrderRoutingResult, SmartOrderRequest


def request_fingerprint(request: SmartOrderRequest) -> str:
    """SHA-256 of the request's canonical JSON: the same key with another body is a conflict."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotentReplay:
    """Answers a repeated ``(user_id, clientOrderId)`` from the stored order.

    Parameters
    ----------
    orders
        Where the first request's order and answer are stored.
    wait_s
        How long a concurrent duplicate waits for the first request's answer.
    poll_s
        Pause between two reads while waiting.
    sleep, monotonic
        Time, passed in so tests need not wait.
    """

    def __init__(
        self,
        orders: OrderRepository,
        *,
        wait_s: float,
        poll_s: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._orders = orders
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._sleep = sleep
        self._monotonic = monotonic

    def exists(self, user_id: str, client_order_id: str) -> bool:
        """Whether an order with this key is stored."""
        return self._orders.find_by_client_order_id(user_id, client_order_id) is not None

    def answer(self, user_id: str, client_order_id: str, fingerprint: str) -> OrderRoutingResult:
        """The stored answer to the key's first request, marked ``replayed``.

        Waits up to ``wait_s`` while the first request is still placing its children.

        Raises
        ------
        ConflictError
            The key was used with another body, or the first request is still being processed.
        """
        deadline = self._monotonic() + self._wait_s
        while True:
            stored = self._orders.find_by_client_order_id(user_id, client_order_id)
            if stored is None:  # pragma: no cover - a stored order is never deleted
                raise ConflictError("the order of this key disappeared")
            if stored.request_hash != fingerprint:
                raise ConflictError(
                    "clientOrderId was already used for a different order; use a new key"
                )
            if stored.response is not None:
                result = OrderRoutingResult.model_validate(stored.response)
                return result.model_copy(update={"replayed": True})
            if self._monotonic() >= deadline:
                raise ConflictError("the first request with this key is still being processed")
            self._sleep(self._poll_s)
