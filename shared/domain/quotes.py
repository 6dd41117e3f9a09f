"""Which quote an order may be routed on, and which one the router learns from (pure).

A trader may send the quote they see (``SmartOrderRequest.quote``). It can help that order's
own decision (a fresher view than the server's one-second cache), but it is the trader's word,
not the market's: if executions were measured against it, one trader could move every broker's
shared slippage and price-improvement averages, and with them every other trader's expected
price. So:

* a client quote must be well formed (bid below ask, positive prices) and, when the server has
  its own market reference, lie inside a band around the server's mid
  (:func:`check_client_quote`);
* learning is measured only against the server's arrival reference, stored with every child
  order; a client quote never is one.

The band and its reasons are in ``docs/routing-engine.md`` ("Client quotes").
"""

from __future__ import annotations

from decimal import Decimal

from shared.domain.errors import InvalidOrderError
from shared.domain.models import Quote
from shared.domain.orders import TICK_SIZE

QUOTE_BAND_FRACTION = Decimal("0.01")
"""A client quote may be at most 1 % of the server's mid away from it."""
QUOTE_BAND_MIN_TICKS = 5
"""... or five ticks, whichever is wider: on a ₹10 share 1 % is two ticks, less than an
honest quote from a slightly different moment can differ by."""


def quote_band(reference_mid: Decimal, *, tick: Decimal = TICK_SIZE) -> Decimal:
    """Largest distance from the server's mid a client price may have.

    ``max(1 % x mid, 5 ticks)``.

    Parameters
    ----------
    reference_mid
        The server's mid (or last price when it has no two-sided quote); positive.
    tick
        Price tick of the instrument.

    Returns
    -------
    Decimal
        The half-width of the band, in rupees.
    """
    return max(reference_mid * QUOTE_BAND_FRACTION, QUOTE_BAND_MIN_TICKS * tick)


def check_client_quote(client: Quote, server: Quote | None) -> None:
    """Refuse a client quote that is malformed or outside the band around the server's mid.

    Rules, in order:

    1. at least one price (``bid``, ``ask`` or ``last``);
    2. every price positive;
    3. with both sides, ``bid < ask``: a crossed or zero-width quote is no market;
    4. when the server has a reference (``server.mid``: its mid, else its last price), every
       price the client sent lies within :func:`quote_band` of it.

    Without a server reference only rules 1-3 apply: the quote may then guide this order's own
    decision, but it is never recorded as the arrival reference of its children.

    Parameters
    ----------
    client
        The quote the trader sent.
    server
        The server's own quote of the symbol, or ``None`` when it has none.

    Raises
    ------
    InvalidOrderError
        On field ``quote``, with the rule that failed.
    """
    prices = {name: getattr(client, name) for name in ("bid", "ask", "last")}
    given = {name: value for name, value in prices.items() if value is not None}
    if not given:
        raise InvalidOrderError("quote", "must carry a bid, an ask or a last price")
    for name, value in given.items():
        if not value.is_finite() or value <= 0:
            raise InvalidOrderError("quote", f"{name} must be a positive price, got {value}")
    if client.bid is not None and client.ask is not None and client.bid >= client.ask:
        raise InvalidOrderError(
            "quote", f"bid {client.bid} must be below ask {client.ask} (crossed or zero width)"
        )
    mid = server.mid if server is not None else None
    if mid is None:
        return
    band = quote_band(mid)
    for name, value in given.items():
        if abs(value - mid) > band:
            raise InvalidOrderError(
                "quote",
                f"{name} {value} is more than {band.normalize():f} from the market mid "
                f"{mid.normalize():f} (band: the larger of 1 % and {QUOTE_BAND_MIN_TICKS} ticks)",
            )
