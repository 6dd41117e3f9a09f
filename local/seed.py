"""Seed data for local mode and tests: five Indian brokers and profiles for twenty NSE symbols.

Fee schedules follow the brokers' published tariffs for NSE cash (checked 2026-11; see
``docs/local-mode.md``): discount brokers charge min(INR 20, 0.03 %) per executed intraday order;
delivery is free at Zerodha and Dhan, INR 20 or a percentage elsewhere; DP charges per scrip on
delivery sells. Prices, depth and volume are illustrative orders of magnitude, not market data.
Each broker's paper behaviour (its hidden "true" quality) differs, and the seeded profiles
start close to but not exactly at that truth, as if learned from a few dozen fills.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from pydantic.alias_generators import to_snake

from shared.adapters.postgres.brokers import PostgresBrokerRepository
from shared.adapters.postgres.pool import Database
from shared.adapters.postgres.profiles import PostgresProfileRepository
from shared.adapters.postgres.risk import PostgresInstrumentRepository
from shared.domain.brokers import BrokerConfig, WebhookAuth
from shared.domain.models import BrokerageRule, BrokerProfile, Exchange, FeeSchedule
from shared.domain.orders import TICK_SIZE
from shared.domain.risk import IST, Instrument

INTRADAY_DISCOUNT = BrokerageRule(rate_pct=Decimal("0.03"), cap_inr=Decimal(20))

# broker id -> (display name, fee schedule, rate limit/s, freeze qty, paper behaviour, profile)
BROKERS: dict[str, dict[str, Any]] = {
    "zerodha": {
        "name": "Zerodha Kite",
        "fees": FeeSchedule(intraday=INTRADAY_DISCOUNT, dp_charge_inr=Decimal("15.34")),
        "rate_limit": 10,
        "freeze": 50_000,
        "behaviour": {
            "ackLatencyMs": 35,
            "fillLatencyMs": 110,
            "rejectRate": 0.01,
            "partialFillRate": 0.03,
            "slippageBpsMean": 0.8,
            "slippageBpsStd": 0.6,
        },
        "profile": {"latency": 150, "fill": 98.5, "slip": 1.0, "err": 1.0, "spread": 2.0},
    },
    "upstox": {
        "name": "Upstox",
        "fees": FeeSchedule(
            delivery=BrokerageRule(rate_pct=Decimal("2.5"), cap_inr=Decimal(20)),
            intraday=INTRADAY_DISCOUNT,
            dp_charge_inr=Decimal("18.50"),
        ),
        "rate_limit": 25,
        "freeze": 50_000,
        "behaviour": {
            "ackLatencyMs": 55,
            "fillLatencyMs": 160,
            "rejectRate": 0.02,
            "partialFillRate": 0.05,
            "slippageBpsMean": 1.2,
            "slippageBpsStd": 0.9,
        },
        "profile": {"latency": 210, "fill": 97.0, "slip": 1.4, "err": 2.0, "spread": 2.2},
    },
    "dhan": {
        "name": "Dhan",
        "fees": FeeSchedule(intraday=INTRADAY_DISCOUNT, dp_charge_inr=Decimal("12.98")),
        "rate_limit": 25,
        "freeze": 25_000,
        "behaviour": {
            "ackLatencyMs": 45,
            "fillLatencyMs": 140,
            "rejectRate": 0.04,
            "partialFillRate": 0.06,
            "slippageBpsMean": 1.0,
            "slippageBpsStd": 1.0,
        },
        "profile": {"latency": 180, "fill": 96.0, "slip": 1.1, "err": 3.5, "spread": 2.1},
    },
    "fyers": {
        "name": "Fyers",
        "fees": FeeSchedule(
            delivery=BrokerageRule(rate_pct=Decimal("0.3"), cap_inr=Decimal(20)),
            intraday=INTRADAY_DISCOUNT,
            dp_charge_inr=Decimal("12.00"),
        ),
        "rate_limit": 10,
        "freeze": 50_000,
        "behaviour": {
            "ackLatencyMs": 30,
            "fillLatencyMs": 100,
            "rejectRate": 0.015,
            "partialFillRate": 0.04,
            "slippageBpsMean": 1.6,
            "slippageBpsStd": 1.2,
        },
        "profile": {"latency": 130, "fill": 97.5, "slip": 1.8, "err": 1.5, "spread": 2.4},
    },
    "angelone": {
        "name": "Angel One",
        "fees": FeeSchedule(
            delivery=BrokerageRule(
                rate_pct=Decimal("0.1"), min_inr=Decimal(5), cap_inr=Decimal(20)
            ),
            intraday=INTRADAY_DISCOUNT,
            dp_charge_inr=Decimal("20.00"),
        ),
        "rate_limit": 20,
        "freeze": 50_000,
        "behaviour": {
            "ackLatencyMs": 70,
            "fillLatencyMs": 220,
            "rejectRate": 0.03,
            "partialFillRate": 0.08,
            "slippageBpsMean": 1.3,
            "slippageBpsStd": 1.1,
        },
        "profile": {"latency": 290, "fill": 95.0, "slip": 1.5, "err": 2.5, "spread": 2.3},
    },
}

# symbol -> (illustrative last price INR, shares near the touch, shares traded in 5 minutes)
SYMBOLS: dict[str, tuple[str, int, int]] = {
    "RELIANCE": ("1295.40", 60_000, 1_800_000),
    "TCS": ("3410.25", 18_000, 420_000),
    "HDFCBANK": ("1712.60", 55_000, 1_500_000),
    "INFY": ("1498.35", 40_000, 900_000),
    "ICICIBANK": ("1318.90", 50_000, 1_300_000),
    "SBIN": ("812.45", 90_000, 2_400_000),
    "BHARTIARTL": ("1620.10", 30_000, 700_000),
    "ITC": ("418.70", 120_000, 3_000_000),
    "HINDUNILVR": ("2395.55", 12_000, 260_000),
    "LT": ("3612.80", 10_000, 240_000),
    "KOTAKBANK": ("1788.25", 20_000, 450_000),
    "AXISBANK": ("1104.65", 45_000, 1_000_000),
    "BAJFINANCE": ("905.30", 35_000, 800_000),
    "MARUTI": ("11250.00", 3_000, 60_000),
    "SUNPHARMA": ("1702.15", 15_000, 330_000),
    "TITAN": ("3318.40", 9_000, 200_000),
    "ASIANPAINT": ("2410.05", 8_000, 180_000),
    "WIPRO": ("248.60", 150_000, 3_500_000),
    "NTPC": ("342.75", 110_000, 2_800_000),
    "ONGC": ("243.90", 130_000, 3_100_000),
    "TATASTEEL": ("152.35", 300_000, 6_000_000),
    "ULTRACEMCO": ("11120.50", 2_000, 40_000),
}


def seed_brokers() -> list[BrokerConfig]:
    """The five paper brokers (webhooks signed with HMAC, secrets under ``<id>/webhook``)."""
    return [
        BrokerConfig(
            broker_id=broker_id,
            display_name=spec["name"],
            adapter="paper",
            adapter_config=spec["behaviour"],
            webhook_auth=WebhookAuth.HMAC,
            webhook_secret_ref=f"{broker_id}/webhook",
            fee_schedule=spec["fees"],
            rate_limit_per_s=spec["rate_limit"],
            freeze_quantity=spec["freeze"],
        )
        for broker_id, spec in BROKERS.items()
    ]


def seed_profiles(now: datetime) -> list[BrokerProfile]:
    """A profile per broker and symbol, as if learned from 40 fills."""
    profiles = []
    for broker_id, spec in BROKERS.items():
        learned = spec["profile"]
        for symbol, (price, depth, volume) in SYMBOLS.items():
            profiles.append(
                BrokerProfile(
                    broker_id=broker_id,
                    symbol=symbol,
                    avg_execution_time_ms=learned["latency"],
                    fill_rate_percentage=learned["fill"],
                    price_improvement_bps=0.0,
                    slippage_bps=learned["slip"],
                    current_spread_bps=learned["spread"],
                    order_book_depth=depth,
                    recent_volume=volume,
                    response_time_ms=spec["behaviour"]["ackLatencyMs"],
                    error_rate_percentage=learned["err"],
                    last_updated=now,
                    sample_count=40,
                    rate_limit_per_s=spec["rate_limit"],
                    freeze_quantity=spec["freeze"],
                    fee_schedule=spec["fees"],
                    volatility_bps=150.0,
                    last_price=float(price),
                )
            )
    return profiles


BAND_PCT = Decimal(10)
"""Seeded price bands: the seeded last price +/- 10 % (NSE's widest common band below 20 %)."""


def seed_instruments(now: datetime) -> list[Instrument]:
    """An NSE and a BSE record per seeded symbol, the band dated today (IST) around its price.

    Lower bounds round up and upper bounds down to the tick, so the band is never wider than
    10 % either side.
    """
    instruments = []
    for (symbol, (price, _, _)), exchange in itertools.product(SYMBOLS.items(), Exchange):
        last = Decimal(price)
        width = last * BAND_PCT / 100
        instruments.append(
            Instrument(
                symbol=symbol,
                exchange=exchange,
                tick_size=TICK_SIZE,
                lot_size=1,
                freeze_quantity=None,
                band_lower=_to_tick(last - width, ROUND_CEILING),
                band_upper=_to_tick(last + width, ROUND_FLOOR),
                band_date=now.astimezone(IST).date(),
                updated_at=now,
            )
        )
    return instruments


def _to_tick(price: Decimal, rounding: str) -> Decimal:
    return (price / TICK_SIZE).quantize(Decimal(1), rounding=rounding) * TICK_SIZE


def webhook_secrets() -> dict[str, str]:
    """Local webhook secrets by secret reference (never used outside local mode and tests)."""
    return {f"{broker_id}/webhook": f"local-{broker_id}-webhook-secret" for broker_id in BROKERS}


def _keep_stored(seeded: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` plus the seeded keys it lacks in either spelling (camelCase or snake_case)."""
    present = {to_snake(key) for key in stored}
    return {**{k: v for k, v in seeded.items() if to_snake(k) not in present}, **stored}


def seed(
    database: Database, now: datetime, *, keep_for: timedelta = timedelta(0)
) -> tuple[int, int]:
    """Write the brokers and instruments, and the profiles missing or older than ``keep_for``.

    Brokers are upserted, but a broker already stored keeps its ``adapter_config`` (a paper
    broker's true behaviour, which an operator may have changed while it ran) and whether it is
    enabled; keys the stored configuration lacks come from the seed. Instruments are upserted
    too, with today's band. A profile updated within
    ``keep_for`` (the routing engine's maximum profile age) is kept as it is, so what a previous
    run learned survives a restart; an older one would be excluded from routing as stale, so it
    starts again from the seed.

    Returns
    -------
    tuple[int, int]
        Brokers written, profiles written.
    """
    brokers = PostgresBrokerRepository(database)
    for seeded in seed_brokers():
        stored = brokers.get(seeded.broker_id)
        if stored is not None:
            seeded = seeded.model_copy(  # noqa: PLW2901 - the seed, with the operator's changes
                update={
                    "adapter_config": _keep_stored(seeded.adapter_config, stored.adapter_config),
                    "enabled": stored.enabled,
                }
            )
        brokers.upsert(seeded)
    instruments = PostgresInstrumentRepository(database)
    for instrument in seed_instruments(now):
        instruments.upsert(instrument)
    profiles = PostgresProfileRepository(database)
    written = 0
    for profile in seed_profiles(now):
        current = profiles.get(profile.broker_id, profile.symbol) if keep_for else None
        if current is None or now - current.last_updated >= keep_for:
            profiles.upsert(profile)
            written += 1
    return len(BROKERS), written
