"""The client-quote band: which quotes a trader may route on (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.domain.errors import InvalidOrderError
from shared.domain.models import Quote
from shared.domain.quotes import check_client_quote, quote_band

SERVER = Quote(bid=Decimal("418.75"), ask=Decimal("418.85"), last=Decimal("418.80"))
"""Mid 418.80: the band is max(1 % = 4.188, 5 ticks = 0.25) = 4.188."""


def test_band_is_one_percent_or_five_ticks_whichever_is_wider() -> None:
    # GIVEN a ₹418.80 share and a ₹10 share
    # WHEN their bands are computed
    # THEN the first is 1 % of the mid, the second five 0.05 ticks (1 % would be two ticks)
    assert quote_band(Decimal("418.80")) == Decimal("4.1880")
    assert quote_band(Decimal("10.00")) == Decimal("0.25")


@pytest.mark.parametrize(
    "client",
    [
        Quote(bid=Decimal("418.70"), ask=Decimal("418.90")),
        Quote(bid=Decimal("414.62"), ask=Decimal("422.98")),  # both just inside the band
        Quote(last=Decimal("420.00")),
        Quote(ask=Decimal("419.00")),
    ],
)
def test_a_quote_near_the_market_is_accepted(client: Quote) -> None:
    # GIVEN a client quote within the band around the server's mid
    # WHEN it is checked
    # THEN nothing is raised
    check_client_quote(client, SERVER)


@pytest.mark.parametrize(
    ("client", "words"),
    [
        # the poisoning quote: market ≈ 418.79
        (Quote(bid=Decimal("230.33"), ask=Decimal("259.65")), "bid 230.33"),
        (Quote(bid=Decimal("418.70"), ask=Decimal("423.00")), "ask 423.00"),
        (Quote(bid=Decimal("414.60"), ask=Decimal("418.90")), "bid 414.60"),
        (Quote(last=Decimal("547.83")), "last 547.83"),
        (Quote(bid=Decimal("418.80"), ask=Decimal("418.80")), "zero width"),
        (Quote(), "must carry"),
    ],
)
def test_a_quote_outside_the_band_or_malformed_is_refused(client: Quote, words: str) -> None:
    # GIVEN a client quote far from the market, of zero width, or empty
    # WHEN it is checked
    # THEN it is refused on field quote, saying which price and why
    with pytest.raises(InvalidOrderError) as raised:
        check_client_quote(client, SERVER)
    assert raised.value.field == "quote"
    assert words in raised.value.message


def test_a_crossed_quote_is_refused_even_when_built_without_validation() -> None:
    # GIVEN a crossed quote that skipped the model's own check
    crossed = Quote.model_construct(bid=Decimal("419.00"), ask=Decimal("418.00"), last=None)
    # WHEN it is checked
    # THEN it is refused as crossed
    with pytest.raises(InvalidOrderError, match="crossed"):
        check_client_quote(crossed, SERVER)


def test_non_positive_prices_are_refused() -> None:
    # GIVEN a quote with a negative bid that skipped the model's own check
    negative = Quote.model_construct(bid=Decimal("-1"), ask=Decimal("418.80"), last=None)
    # WHEN it is checked
    # THEN it is refused
    with pytest.raises(InvalidOrderError, match="positive"):
        check_client_quote(negative, SERVER)


def test_without_a_server_reference_only_the_shape_is_checked() -> None:
    # GIVEN no server quote
    # WHEN a well-formed quote far from any market is checked
    # THEN it passes (it will steer that order only, never learning)
    check_client_quote(Quote(bid=Decimal("230.33"), ask=Decimal("259.65")), None)
    # AND a zero-width one is still refused
    with pytest.raises(InvalidOrderError):
        check_client_quote(Quote(bid=Decimal("230.33"), ask=Decimal("230.33")), None)
