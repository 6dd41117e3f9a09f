"""A real broker behind the routing service's :class:`~shared.ports.BrokerGateway` port.

:class:`ClientGateway` turns a child order into a :class:`BrokerOrderRequest`, places it with a
:class:`~shared.ports.BrokerClient` under the account's credentials, and turns every failure
into a placement result with its reason: a broker that certainly did not take the order
(token, permission, input, order refusal, rate limit, no connection) is ``REJECTED`` so the
quantity cascades; a timeout or a failure after which the order may exist (network, 5xx) is
``TIMED_OUT``, to be cancelled or reconciled before its quantity goes elsewhere.

Each child goes out under its trader's own connection (:class:`~shared.ports.TraderAccounts`,
docs/brokers.md "Trader broker connections"); a broker refusing the token (``TokenException``)
marks that connection EXPIRED. A platform account from the secret store
(``adapter_config.credentials_ref``) remains for adapter tests where no connections are wired.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from pydantic import ValidationError

from shared.domain.broker_orders import (
    BrokerAccount,
    BrokerCallError,
    BrokerErrorKind,
    BrokerOrderRequest,
    BrokerOrderState,
    broker_tag,
)
from shared.domain.errors import DataUnavailableError, DomainError
from shared.domain.execution import ExecutionReport, ExecutionStatus
from shared.domain.orders import ChildOrder, ChildOrderStatus
from shared.domain.settlement import BrokerLookup, LookupOutcome
from shared.ports import BrokerClient, PlacementResult, SecretStore, TraderAccounts


class TaggedClient(BrokerClient, Protocol):
    """A broker client that also says how long its order tags may be."""

    tag_length: int


AccountSource = Callable[[str], BrokerAccount]
"""The account to place a trader's (user id's) child under; raises ``BrokerCallError(TOKEN)``
when there is none."""


def trader_account(accounts: TraderAccounts, broker_id: str) -> AccountSource:
    """The trader's own LIVE connection to ``broker_id``."""

    def load(user_id: str) -> BrokerAccount:
        return accounts.account(user_id, broker_id)

    return load


def secret_account(secrets: SecretStore, ref: str) -> AccountSource:
    """An account read from the secret store at each call (a Kite token changes every day).

    The secret is a JSON object ``{"api_key": ..., "client_id": ..., "access_token": ...}``
    (fields a broker does not use may be left out); the store caches it.
    """

    def load(_user_id: str) -> BrokerAccount:
        try:
            values = secrets.get(ref)
        except DataUnavailableError as exc:
            # Nothing was sent: the order can go to the next broker.
            raise BrokerCallError(
                BrokerErrorKind.UNREACHABLE, f"broker credentials store unavailable: {exc}"
            ) from exc
        if not values:
            raise BrokerCallError(BrokerErrorKind.TOKEN, f"no broker credentials under {ref!r}")
        try:
            document = json.loads(values[0])
            return BrokerAccount.model_validate({"account_id": ref, **document})
        except (ValueError, TypeError, ValidationError) as exc:
            # Never echo the secret: only say that it is unusable.
            raise BrokerCallError(
                BrokerErrorKind.TOKEN, f"broker credentials under {ref!r} are not usable"
            ) from exc

    return load


PROBE_CHILD_ID = "health-probe"
"""The child id whose tag a health probe looks up: no child order has it."""
_NO_ANSWER = frozenset(
    {
        BrokerErrorKind.UNREACHABLE,
        BrokerErrorKind.TIMEOUT,
        BrokerErrorKind.NETWORK,
        BrokerErrorKind.SERVER,
    }
)


class ClientGateway:
    """:class:`~shared.ports.BrokerGateway` of one real broker.

    Parameters
    ----------
    broker_id
        Our id of the broker.
    client
        Its order API client.
    account
        Where the credentials of a trader's child come from.
    on_token_rejected
        Told ``(user_id, broker_id)`` when the broker refuses the token.
    """

    def __init__(
        self,
        broker_id: str,
        client: TaggedClient,
        account: AccountSource,
        *,
        on_token_rejected: Callable[[str, str], None] | None = None,
    ) -> None:
        self.broker_id = broker_id
        self.client = client
        self._account = account
        self._on_token_rejected = on_token_rejected

    def _refused(self, child: ChildOrder, exc: BrokerCallError) -> None:
        # Only the broker's own refusal (it answered): a missing connection is not news.
        if (
            exc.kind is BrokerErrorKind.TOKEN
            and exc.http_status is not None
            and self._on_token_rejected is not None
        ):
            self._on_token_rejected(child.user_id, self.broker_id)

    def place(self, child: ChildOrder, *, timeout_s: float) -> PlacementResult:
        """Place ``child``; every failure is a result with its reason, never an exception."""
        started = time.perf_counter()

        def result(
            status: ChildOrderStatus, *, broker_order_id: str | None = None, reason: str | None
        ) -> PlacementResult:
            return PlacementResult(
                child_order_id=child.child_order_id,
                status=status,
                broker_order_id=broker_order_id,
                reason=reason,
                response_time_ms=(time.perf_counter() - started) * 1000,
            )

        try:
            request = BrokerOrderRequest.from_child(child, tag_length=self.client.tag_length)
        except ValidationError as exc:
            return result(ChildOrderStatus.REJECTED, reason=f"INPUT: {exc.errors()[0]['msg']}")
        try:
            account = self._account(child.user_id)
            broker_order_id = self.client.place(account, request, timeout_s=timeout_s)
        except BrokerCallError as exc:
            self._refused(child, exc)
            return result(exc.kind.child_status, reason=exc.reason)
        return result(ChildOrderStatus.PLACED, broker_order_id=broker_order_id, reason=None)

    def probe(self, *, timeout_s: float) -> bool | None:
        """A health probe (``BrokerHealthProbe``): one read of the order book, risking nothing.

        It looks up a tag no child carries under the platform's own account. Any answer -- the
        empty result, or a refusal the broker made (token, permission, rate limit) -- means the
        broker is up; no connection, a timeout, a network or server failure mean it is not.
        ``None`` when there is no account to ask with (brokers reached only through traders'
        own connections).
        """
        try:
            account = self._account("")
        except (BrokerCallError, DataUnavailableError):
            return None
        tag = broker_tag(PROBE_CHILD_ID, self.client.tag_length)
        try:
            self.client.find_by_tag(account, tag, timeout_s=timeout_s)
        except BrokerCallError as exc:
            return exc.kind not in _NO_ANSWER
        return True

    def lookup(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Find the order placed for ``child`` by its tag (``BrokerOrderLookup``).

        ``NOT_FOUND`` when the broker's book has no order under the child's tag (it never got
        it); ``UNKNOWN`` when the broker could not be asked (timeout, outage, no credentials);
        ``FOUND`` with the broker's state, order id and one cumulative report.
        """
        try:
            state = self._current(self._account(child.user_id), child, timeout_s=timeout_s)
        except BrokerCallError as exc:
            self._refused(child, exc)
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason=exc.reason)
        if state is None:
            return BrokerLookup(outcome=LookupOutcome.NOT_FOUND)
        return self._found(child, state, (state,))

    def cancel_child(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """Cancel the order a timed-out ``child`` left at the broker (``BrokerOrderCanceller``).

        The order is found by the child's broker order id or tag; a working order is cancelled
        and its status read again, since only that status confirms the cancel (a fill may have
        come first). A cancel the broker refuses is not an error by itself: the status read
        after it decides. Every failure to learn the state is ``UNKNOWN``.
        """
        refused: str | None = None
        try:
            account = self._account(child.user_id)
            state = self._current(account, child, timeout_s=timeout_s)
            if state is None:
                return BrokerLookup(outcome=LookupOutcome.NOT_FOUND)
            if not state.status.is_terminal:
                try:
                    self.client.cancel(account, state.broker_order_id, timeout_s=timeout_s)
                except BrokerCallError as exc:
                    refused = f"cancel refused: {exc.reason}"
                state = self.client.status(account, state.broker_order_id, timeout_s=timeout_s)
        except BrokerCallError as exc:
            reason = f"{refused}; " if refused else ""
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason=f"{reason}{exc.reason}")
        found = self._found(child, state, (state,))
        if state.status.is_terminal or refused is None:
            return found
        return found.model_copy(update={"reason": refused})

    def poll(self, child: ChildOrder, *, timeout_s: float) -> BrokerLookup:
        """The broker's order history of ``child`` as reports (``BrokerOrderPoller``).

        By the broker's order id when we know it (every state, oldest first, as its postbacks
        would have said), else by tag (the current state only).
        """
        try:
            account = self._account(child.user_id)
            if child.broker_order_id:
                states = self.client.history(account, child.broker_order_id, timeout_s=timeout_s)
            else:
                current = self.client.find_by_tag(
                    account,
                    broker_tag(child.child_order_id, self.client.tag_length),
                    timeout_s=timeout_s,
                )
                states = [current] if current is not None else []
        except BrokerCallError as exc:
            return BrokerLookup(outcome=LookupOutcome.UNKNOWN, reason=exc.reason)
        if not states:
            return BrokerLookup(outcome=LookupOutcome.NOT_FOUND)
        return self._found(child, states[-1], states)

    def _current(
        self, account: BrokerAccount, child: ChildOrder, *, timeout_s: float
    ) -> BrokerOrderState | None:
        if child.broker_order_id:
            return self.client.status(account, child.broker_order_id, timeout_s=timeout_s)
        tag = broker_tag(child.child_order_id, self.client.tag_length)
        return self.client.find_by_tag(account, tag, timeout_s=timeout_s)

    def _found(
        self, child: ChildOrder, state: BrokerOrderState, states: Sequence[BrokerOrderState]
    ) -> BrokerLookup:
        return BrokerLookup(
            outcome=LookupOutcome.FOUND,
            status=_CHILD_STATUS[state.status],
            broker_order_id=state.broker_order_id,
            reason=state.reason,
            filled_quantity=state.filled_quantity,
            reports=tuple(r for s in states for r in self._report(child, s)),
        )

    def _report(self, child: ChildOrder, state: BrokerOrderState) -> tuple[ExecutionReport, ...]:
        # The order's state as one cumulative report, like the postback that may have been lost.
        at = state.updated_at or state.placed_at
        if at is None:
            return ()
        try:
            report = ExecutionReport(
                broker_id=self.broker_id,
                broker_order_id=state.broker_order_id,
                child_order_id=child.child_order_id,
                exchange_order_id=state.exchange_order_id,
                status=state.status,
                quantity=state.quantity,
                filled_quantity=state.filled_quantity,
                average_price=state.average_price,
                symbol=child.symbol,
                exchange=child.exchange,
                side=child.side,
                event_time=at,
                status_message=state.reason,
            )
        except (ValueError, DomainError):
            # An impossible state is not learned from; the status above still settles the child.
            return ()
        return (report,)


_CHILD_STATUS = {
    ExecutionStatus.OPEN: ChildOrderStatus.PLACED,
    ExecutionStatus.PARTIALLY_FILLED: ChildOrderStatus.PARTIALLY_FILLED,
    ExecutionStatus.FILLED: ChildOrderStatus.FILLED,
    ExecutionStatus.CANCELLED: ChildOrderStatus.CANCELLED,
    ExecutionStatus.REJECTED: ChildOrderStatus.REJECTED,
}
