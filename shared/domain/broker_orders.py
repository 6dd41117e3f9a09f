"""What a real broker's order API takes and answers, in one vocabulary for every broker.

The broker client port (:class:`shared.ports.BrokerClient`) speaks these types; each adapter in
``shared/adapters/brokers`` translates them to its broker's REST contract (Kite Connect v3,
Upstox v2/v3, Dhan v2) and translates the broker's errors back into a
:class:`BrokerCallError` of one :class:`BrokerErrorKind`. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, SecretStr, model_validator

from shared.domain.execution import ExecutionStatus
from shared.domain.models import Exchange, FrozenModel, OrderType, Product, Side
from shared.domain.orders import ChildOrder, ChildOrderStatus


class BrokerOrderType(StrEnum):
    """Order types as the Indian brokers' APIs name them."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"
    """Stop-loss limit: a limit order that becomes live at the trigger price."""
    SL_M = "SL-M"
    """Stop-loss market: a market order that becomes live at the trigger price."""

    @classmethod
    def of(cls, order_type: OrderType) -> BrokerOrderType:
        """The broker order type of one of our order types."""
        return _ORDER_TYPES[order_type]

    @property
    def needs_price(self) -> bool:
        """LIMIT and SL carry a limit price."""
        return self in (BrokerOrderType.LIMIT, BrokerOrderType.SL)

    @property
    def needs_trigger(self) -> bool:
        """SL and SL-M carry a trigger price."""
        return self in (BrokerOrderType.SL, BrokerOrderType.SL_M)


_ORDER_TYPES = {
    OrderType.MARKET: BrokerOrderType.MARKET,
    OrderType.LIMIT: BrokerOrderType.LIMIT,
    OrderType.STOP_LOSS: BrokerOrderType.SL,
    OrderType.STOP_LOSS_MARKET: BrokerOrderType.SL_M,
}


class BrokerProduct(StrEnum):
    """Products: CNC (delivery), MIS (intraday), NRML (carry forward, derivatives).

    Our API takes CNC and MIS for cash equities; NRML exists for the broker port.
    """

    CNC = "CNC"
    MIS = "MIS"
    NRML = "NRML"


class BrokerAccount(FrozenModel):
    """The credentials one order is sent under (a platform account today; a trader's own next).

    ``access_token`` is a :class:`~pydantic.SecretStr`, so it never appears in a repr or a log.
    """

    account_id: str = Field(min_length=1)
    """Who the account belongs to (our reference, for logs and rate-limit keys)."""
    api_key: str = ""
    """Kite Connect: the app's API key (sent with the token in ``Authorization``)."""
    client_id: str = ""
    """Dhan: the ``dhanClientId`` every order body carries (and the ``client-id`` header)."""
    access_token: SecretStr


# Tags (Kite ``tag``, Upstox ``tag``, Dhan ``correlationId``) have short, broker-specific limits;
# a child order id (``ord-<32 hex>-1-1``) does not fit, so the tag is derived from it.
_TAG_SAFE = re.compile(r"^[A-Za-z0-9]+$")


def broker_tag(child_order_id: str, max_length: int) -> str:
    """The tag under which a child order is placed: its id if it fits, else a digest of it.

    Parameters
    ----------
    child_order_id
        Our child order id.
    max_length
        The broker's longest tag (Kite 20, Upstox 40, Dhan 25 characters).

    Returns
    -------
    str
        Alphanumeric, at most ``max_length`` characters, the same for the same child every
        time (a retry or a reconciliation finds the order by it).
    """
    if len(child_order_id) <= max_length and _TAG_SAFE.match(child_order_id):
        return child_order_id
    return "r" + hashlib.sha256(child_order_id.encode()).hexdigest()[: max_length - 1]


class BrokerOrderRequest(FrozenModel):
    """One order to place with a broker."""

    tag: str = Field(min_length=1, max_length=40)
    symbol: str
    exchange: Exchange
    side: Side
    quantity: int = Field(gt=0)
    order_type: BrokerOrderType
    product: BrokerProduct
    price: Decimal | None = Field(default=None, gt=0)
    trigger_price: Decimal | None = Field(default=None, gt=0)
    validity: str = "DAY"

    @model_validator(mode="after")
    def _prices_match_type(self) -> BrokerOrderRequest:
        if self.order_type.needs_price and self.price is None:
            raise ValueError(f"a {self.order_type} order needs a price")
        if self.order_type.needs_trigger and self.trigger_price is None:
            raise ValueError(f"a {self.order_type} order needs a trigger price")
        return self

    @classmethod
    def from_child(cls, child: ChildOrder, *, tag_length: int) -> BrokerOrderRequest:
        """The request that places ``child`` (its tag derived with :func:`broker_tag`)."""
        order_type = BrokerOrderType.of(child.order_type)
        return cls(
            tag=broker_tag(child.child_order_id, tag_length),
            symbol=child.symbol,
            exchange=child.exchange,
            side=child.side,
            quantity=child.quantity,
            order_type=order_type,
            product=BrokerProduct(Product(child.product).value),
            price=child.limit_price if order_type.needs_price else None,
            trigger_price=child.trigger_price if order_type.needs_trigger else None,
        )


class BrokerOrderChange(FrozenModel):
    """A modification of an open order: only the fields given change."""

    quantity: int | None = Field(default=None, gt=0)
    price: Decimal | None = Field(default=None, gt=0)
    trigger_price: Decimal | None = Field(default=None, gt=0)
    order_type: BrokerOrderType | None = None


class BrokerOrderState(FrozenModel):
    """One state of one order in a broker's order book (its status, or one history entry)."""

    broker_order_id: str
    status: ExecutionStatus
    broker_status: str
    """The broker's own label (``OPEN PENDING``, ``complete``, ``TRADED``...)."""
    quantity: int = Field(ge=0)
    filled_quantity: int = Field(default=0, ge=0)
    average_price: Decimal | None = None
    reason: str | None = None
    """The broker's status message (why it was rejected or cancelled)."""
    tag: str | None = None
    exchange_order_id: str | None = None
    placed_at: datetime | None = None
    updated_at: datetime | None = None


class BrokerErrorKind(StrEnum):
    """Error families, one vocabulary for every broker (see ``docs/brokers.md``)."""

    TOKEN = "TOKEN"  # noqa: S105 - a family name, not a secret
    """The session is expired or invalid: the account must log in again (Kite TokenException,
    Upstox UDAPI100050, Dhan DH-901)."""
    PERMISSION = "PERMISSION"
    """The account may not do this (Kite Permission/UserException, HTTP 403, Dhan DH-902/903)."""
    INPUT = "INPUT"
    """The request is invalid (Kite InputException, HTTP 400, Dhan DH-905)."""
    ORDER = "ORDER"
    """The broker refused the order (Kite Order/Margin/HoldingException, Dhan DH-906)."""
    NOT_FOUND = "NOT_FOUND"
    """No such order (HTTP 404)."""
    RATE_LIMITED = "RATE_LIMITED"
    """HTTP 429 (Upstox UDAPI10005, Dhan DH-904): the request was not processed."""
    UNREACHABLE = "UNREACHABLE"
    """No connection to the broker could be made: the request was never sent."""
    TIMEOUT = "TIMEOUT"
    """No answer within the timeout: the order may or may not exist at the broker."""
    NETWORK = "NETWORK"
    """The broker could not reach its OMS, or we could not reach the broker (Kite
    NetworkException, Dhan DH-909): the outcome is unknown."""
    SERVER = "SERVER"
    """The broker failed on its side (HTTP 5xx, Kite General/DataException, Dhan DH-907/908/
    910) or answered something we cannot read: the outcome is unknown."""

    @property
    def outcome_unknown(self) -> bool:
        """True when the order may exist at the broker although the call failed.

        Such a placement must be looked up (by tag or order id) or cancelled before its
        quantity goes elsewhere; every other kind means the broker did not act.
        """
        return self in _UNKNOWN_OUTCOME

    @property
    def child_status(self) -> ChildOrderStatus:
        """What a failed placement makes of the child.

        TIMED_OUT when the outcome is unknown, REJECTED when the broker certainly did not take
        the order.
        """
        return ChildOrderStatus.TIMED_OUT if self.outcome_unknown else ChildOrderStatus.REJECTED


_UNKNOWN_OUTCOME = frozenset(
    {BrokerErrorKind.TIMEOUT, BrokerErrorKind.NETWORK, BrokerErrorKind.SERVER}
)


class BrokerCallError(Exception):
    """A broker call that did not succeed, classified.

    Parameters
    ----------
    kind
        The error family.
    message
        The broker's message (or ours, for a timeout), safe to show to the trader.
    broker_code
        The broker's own code: Kite's ``error_type``, Upstox's ``errorCode``, Dhan's
        ``errorCode``; ``None`` when there was no answer.
    http_status
        The HTTP status, when there was an answer.
    """

    def __init__(
        self,
        kind: BrokerErrorKind,
        message: str,
        *,
        broker_code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.broker_code = broker_code
        self.http_status = http_status

    @property
    def reason(self) -> str:
        """One line for the child's ``status_reason``: family, broker code and message."""
        code = f" {self.broker_code}" if self.broker_code else ""
        return f"{self.kind.value}{code}: {self.message}"


class BrokerLimits(FrozenModel):
    """A broker's published order-rate limits per account (``None``: none published)."""

    per_second: int = Field(gt=0)
    per_minute: int | None = Field(default=None, gt=0)
    per_hour: int | None = Field(default=None, gt=0)
    per_day: int | None = Field(default=None, gt=0)
    source: str = ""
    """Where the figures are published."""
