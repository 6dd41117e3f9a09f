"""Trader broker connections: link, list, refresh and unlink, and the account each order uses.

A real broker (Kite, Upstox, Dhan) takes an order only under the trader's own account
(docs/brokers.md, "Trader broker connections"):

* Kite and Upstox link by redirect: :meth:`BrokerLinkService.start_login` issues a single-use
  OAuth ``state`` bound to the trader and the broker (only its digest is stored) and answers the
  broker's login URL; the broker sends the trader back with ``request_token`` (Kite) or ``code``
  (Upstox) and the ``state``; :meth:`BrokerLinkService.complete_login` consumes the state and
  exchanges the token for a session;
* Dhan links with an access token the trader generated at Dhan (:meth:`put_token`), checked with
  Dhan before it is stored.

Credentials are sealed (envelope encryption bound to the trader and the broker) before they are
stored and opened only to place or look up an order. Routing asks :meth:`unavailable` which
brokers the trader cannot use; the gateway asks :meth:`account` for the credentials of a child
and reports a refused token with :meth:`token_rejected` (the connection becomes EXPIRED).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from cachetools import TTLCache
from pydantic import BaseModel, ValidationError

from shared.domain.broker_links import (
    LINKED_ADAPTERS,
    BrokerLink,
    LinkStatus,
    mask_account,
    state_digest,
)
from shared.domain.broker_orders import BrokerAccount, BrokerCallError, BrokerErrorKind
from shared.domain.brokers import BrokerConfig
from shared.domain.eligibility import access_reasons
from shared.domain.errors import (
    DataUnavailableError,
    InvalidLinkError,
    LinkRefusedError,
    NotFoundError,
)
from shared.ports import (
    BrokerLinkStore,
    BrokerRepository,
    BrokerSessions,
    LinkedSession,
    SecretSealer,
)

logger = logging.getLogger(__name__)

REDIRECT_ADAPTERS = frozenset({"kite", "upstox"})
"""Linked by login redirect (OAuth state, then a session exchange)."""
TOKEN_ADAPTERS = frozenset({"dhan"})
"""Linked with an access token the trader generated at the broker."""
STATE_TTL_S = 600
"""How long a login may take between our login URL and the broker's redirect."""
_REFUSED = frozenset(
    {
        BrokerErrorKind.TOKEN,
        BrokerErrorKind.INPUT,
        BrokerErrorKind.PERMISSION,
        BrokerErrorKind.ORDER,
    }
)


class ConnectionView(BaseModel):
    """One connection as its trader sees it (never the token)."""

    broker_id: str
    status: LinkStatus
    linked_at: datetime
    expires_at: datetime | None
    account_hint: str | None

    @classmethod
    def of(cls, link: BrokerLink, now: datetime) -> ConnectionView:
        """The view of ``link`` at ``now`` (a LIVE link past its expiry shows EXPIRED)."""
        return cls(
            broker_id=link.broker_id,
            status=link.status_at(now),
            linked_at=link.linked_at,
            expires_at=link.expires_at,
            account_hint=link.account_hint,
        )


class ConnectionList(BaseModel):
    """``GET /broker-connections``."""

    connections: list[ConnectionView]


class LoginUrl(BaseModel):
    """Where the trader logs in to the broker (``POST .../login``, ``POST .../refresh``)."""

    login_url: str


class TraderConnectionView(ConnectionView):
    """One connection in the operators' list: whose it is, never the token."""

    user_id: str


class TraderConnectionList(BaseModel):
    """``GET /api/v1/admin/connections``."""

    connections: list[TraderConnectionView]


class RefreshResult(BaseModel):
    """``POST .../refresh``: the connection checked again, or where to log in again."""

    connection: ConnectionView | None
    login_url: str | None


def _context(user_id: str, broker_id: str) -> dict[str, str]:
    # The encryption context: a token sealed for one trader and broker opens for no other.
    return {"user_id": user_id, "broker_id": broker_id}


class BrokerLinkService:
    """The ``broker_connections`` function's service, and the accounts of the broker gateway.

    Parameters
    ----------
    links
        Connections and OAuth states.
    sealer
        Envelope encryption of the credentials.
    sessions
        The brokers' login APIs.
    brokers
        Broker configuration (adapter per broker).
    clock
        Current time (UTC).
    new_state
        A fresh unguessable OAuth ``state`` (``secrets.token_urlsafe(32)``).
    broker_list_ttl_s
        How long the enabled brokers' adapters are cached in process.
    """

    def __init__(
        self,
        *,
        links: BrokerLinkStore,
        sealer: SecretSealer,
        sessions: BrokerSessions,
        brokers: BrokerRepository,
        clock: Callable[[], datetime],
        new_state: Callable[[], str],
        broker_list_ttl_s: float = 60.0,
    ) -> None:
        self._links = links
        self._sealer = sealer
        self._sessions = sessions
        self._brokers = brokers
        self._clock = clock
        self._new_state = new_state
        self._adapters: TTLCache[str, dict[str, str]] = TTLCache(maxsize=1, ttl=broker_list_ttl_s)

    # -- the trader API ------------------------------------------------------------------------

    def list(self, user_id: str) -> ConnectionList:
        """Every connection of ``user_id``."""
        now = self._clock()
        return ConnectionList(
            connections=[
                ConnectionView.of(link, now) for link in self._links.list_for_user(user_id)
            ]
        )

    def start_login(self, user_id: str, broker_id: str) -> LoginUrl:
        """Issue a single-use ``state`` for ``user_id`` and answer the broker's login URL.

        Raises
        ------
        NotFoundError
            Unknown or disabled broker.
        InvalidLinkError
            The broker does not link by redirect (Dhan takes a token; paper needs nothing).
        """
        broker = self._broker(broker_id, REDIRECT_ADAPTERS, "login")
        state = self._new_state()
        expires_at = self._clock() + timedelta(seconds=STATE_TTL_S)
        self._links.add_state(state_digest(state), user_id, broker_id, expires_at=expires_at)
        try:
            url = self._sessions.login_url(broker, state)
        except BrokerCallError as exc:
            raise _link_error(exc) from exc
        return LoginUrl(login_url=url)

    def complete_login(
        self, user_id: str, broker_id: str, params: Mapping[str, str]
    ) -> ConnectionView:
        """The broker's redirect: consume the ``state``, exchange the token, store the session.

        Raises
        ------
        InvalidLinkError
            No ``state``, or one unknown, expired, already used, or issued to another trader or
            for another broker; no ``request_token``/``code``.
        LinkRefusedError
            The broker refused the exchange (a bad checksum, a used request token).
        DataUnavailableError
            The broker or the database cannot be reached.
        """
        broker = self._broker(broker_id, REDIRECT_ADAPTERS, "callback")
        state = params.get("state") or ""
        if not state:
            raise InvalidLinkError("state", "missing")
        owner = self._links.take_state(state_digest(state), now=self._clock())
        if owner is None:
            raise InvalidLinkError("state", "unknown, expired or already used")
        if owner != (user_id, broker_id):
            logger.warning("link state presented by another trader or for another broker")
            raise InvalidLinkError("state", "was not issued to this trader for this broker")
        try:
            session = self._sessions.exchange(broker, params, now=self._clock())
        except BrokerCallError as exc:
            raise _link_error(exc) from exc
        return self._store(user_id, broker_id, session)

    def put_token(self, user_id: str, broker_id: str, access_token: str) -> ConnectionView:
        """Link Dhan with a token the trader generated there, once Dhan confirms it.

        Raises
        ------
        NotFoundError, InvalidLinkError, LinkRefusedError, DataUnavailableError
            As :meth:`complete_login`.
        """
        broker = self._broker(broker_id, TOKEN_ADAPTERS, "access token")
        try:
            session = self._sessions.adopt(broker, access_token, now=self._clock())
        except BrokerCallError as exc:
            raise _link_error(exc) from exc
        return self._store(user_id, broker_id, session)

    def refresh(self, user_id: str, broker_id: str) -> RefreshResult:
        """Check the connection with the broker again, or answer where to log in again.

        Kite and Upstox sessions cannot be renewed without the trader (their tokens end each
        morning): a new login URL is answered. A Dhan token is checked with Dhan: LIVE with its
        validity, or EXPIRED.

        Raises
        ------
        NotFoundError
            No connection to refresh.
        """
        broker = self._broker(broker_id, LINKED_ADAPTERS, "refresh")
        if broker.adapter in REDIRECT_ADAPTERS:
            return RefreshResult(
                connection=None, login_url=self.start_login(user_id, broker_id).login_url
            )
        account = self._open(user_id, broker_id)
        if account is None:
            raise NotFoundError(f"no connection to {broker_id}")
        token = account.access_token.get_secret_value()
        try:
            session = self._sessions.adopt(broker, token, now=self._clock())
        except BrokerCallError as exc:
            if exc.kind in _REFUSED:
                self.token_rejected(user_id, broker_id)
                stored = self._links.get(user_id, broker_id)
                view = ConnectionView.of(stored.link, self._clock()) if stored else None
                return RefreshResult(connection=view, login_url=None)
            raise _link_error(exc) from exc
        return RefreshResult(connection=self._store(user_id, broker_id, session), login_url=None)

    def unlink(self, user_id: str, broker_id: str) -> ConnectionView:
        """Revoke the connection and erase its credentials.

        Raises
        ------
        NotFoundError
            No such connection.
        """
        link = self._links.set_status(
            user_id, broker_id, LinkStatus.REVOKED, at=self._clock(), erase=True
        )
        if link is None:
            raise NotFoundError(f"no connection to {broker_id}")
        logger.info("broker connection revoked", extra={"broker_id": broker_id})
        return ConnectionView.of(link, self._clock())

    def all_connections(
        self, *, limit: int, broker_id: str | None = None, status: LinkStatus | None = None
    ) -> TraderConnectionList:
        """Every trader's connections (the operators' view), newest change first.

        A LIVE connection past its expiry is listed EXPIRED; a ``status`` filter applies to the
        stored status.
        """
        now = self._clock()
        links = self._links.list_all(limit=limit, broker_id=broker_id, status=status)
        return TraderConnectionList(
            connections=[
                TraderConnectionView(
                    user_id=link.user_id, **ConnectionView.of(link, now).model_dump()
                )
                for link in links
            ]
        )

    # -- routing -------------------------------------------------------------------------------

    def unavailable(self, user_id: str) -> dict[str, str]:
        """Enabled brokers ``user_id`` cannot route to: held, unlinked, without an adapter.

        The operator's MAINTENANCE or SUSPENDED is read from Postgres with the links on every
        order, so it holds from the next order on even when the profile cache kept an entry
        its eviction missed (Redis unreachable from the admin function, or restarted with its
        data) (docs/api.md, "Admin API").

        Raises
        ------
        DataUnavailableError
            When Postgres cannot be reached.
        """
        listed, held = self._links.routing_access(user_id)
        links = {link.broker_id: link for link in listed}
        reasons = {broker_id: f"broker is {status}" for broker_id, status in held.items()}
        access = access_reasons(self._adapter_by_broker(), links, now=self._clock())
        return {**access, **reasons}

    # -- the broker gateway (TraderAccounts) ---------------------------------------------------

    def account(self, user_id: str, broker_id: str) -> BrokerAccount:
        """The credentials of ``user_id``'s LIVE connection to ``broker_id``."""
        try:
            account = self._open(user_id, broker_id, live_only=True)
        except DataUnavailableError as exc:
            # Nothing was sent: the quantity can go to the next broker.
            raise BrokerCallError(
                BrokerErrorKind.UNREACHABLE, "broker connection store unavailable"
            ) from exc
        if account is None:
            raise BrokerCallError(
                BrokerErrorKind.TOKEN, f"no live connection of this trader to {broker_id}"
            )
        return account

    def token_rejected(self, user_id: str, broker_id: str) -> None:
        """The broker refused the token: the connection becomes EXPIRED until linked again."""
        try:
            self._links.set_status(
                user_id, broker_id, LinkStatus.EXPIRED, at=self._clock(), erase=False
            )
        except DataUnavailableError:
            # The next order meets the same refusal and tries again.
            logger.warning("could not mark a broker connection expired")

    # -- internals -----------------------------------------------------------------------------

    def _adapter_by_broker(self) -> dict[str, str]:
        adapters = self._adapters.get("all")
        if adapters is None:
            adapters = {b.broker_id: b.adapter for b in self._brokers.list_enabled()}
            self._adapters["all"] = adapters
        return adapters

    def _broker(self, broker_id: str, adapters: frozenset[str], step: str) -> BrokerConfig:
        broker = self._brokers.get(broker_id)
        if broker is None or not broker.enabled:
            raise NotFoundError(f"no broker {broker_id}")
        if broker.adapter not in adapters:
            raise InvalidLinkError(
                "brokerId", f"{broker_id} ({broker.adapter}) does not link by {step}"
            )
        return broker

    def _store(self, user_id: str, broker_id: str, session: LinkedSession) -> ConnectionView:
        now = self._clock()
        document = json.dumps(dict(session.credentials)).encode()
        sealed = self._sealer.seal(document, _context(user_id, broker_id))
        link = BrokerLink(
            user_id=user_id,
            broker_id=broker_id,
            status=LinkStatus.LIVE,
            linked_at=now,
            expires_at=session.expires_at,
            account_hint=mask_account(session.account_id),
            updated_at=now,
        )
        self._links.save(link, sealed)
        logger.info("broker connection linked", extra={"broker_id": broker_id})
        return ConnectionView.of(link, now)

    def _open(
        self, user_id: str, broker_id: str, *, live_only: bool = False
    ) -> BrokerAccount | None:
        stored = self._links.get(user_id, broker_id)
        if stored is None or stored.sealed is None:
            return None
        if live_only and not stored.link.live_at(self._clock()):
            return None
        try:
            document = json.loads(self._sealer.open(stored.sealed, _context(user_id, broker_id)))
            return BrokerAccount.model_validate(
                {"account_id": f"{user_id}@{broker_id}", **document}
            )
        except (ValueError, TypeError, ValidationError):
            # Tampered or unreadable: unusable, and never echoed.
            logger.warning("broker connection credentials could not be opened")
            return None


def _link_error(exc: BrokerCallError) -> Exception:
    if exc.kind in _REFUSED or exc.kind is BrokerErrorKind.NOT_FOUND:
        return LinkRefusedError(f"the broker refused: {exc.reason}")
    return DataUnavailableError(f"the broker cannot be reached: {exc.reason}")
