"""Settings of every function, validated once at cold start.

This is the only module that reads the environment. Every variable carries the ``ROUTER_`` prefix;
the CDK stack builds a function's environment with :func:`lambda_environment` so that the names
the infrastructure writes and the names the code reads come from the same model.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ROUTER_"
APP_DB_ROLE = "router_app"
"""The services' database login role (created and granted by ``migrate``; the stack's secret)."""


class Settings(BaseSettings):
    """Configuration shared by every function and the local runtime.

    Database credentials come either as one ``database_url`` (local mode, tests) or, in AWS, as
    a Secrets Manager secret (``db_secret_arn``) holding ``username``/``password`` for the RDS
    Proxy at ``db_host``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    stage: Literal["local", "test", "dev", "prod"] | None = None
    """``ROUTER_STAGE``. Unset means unknown, and unknown is trusted with nothing: the local
    token secret is refused unless the stage is explicitly ``local`` or ``test`` (the stack
    writes ``dev``/``prod``, local mode and the tests write theirs)."""
    service_name: str = "order-router"

    # Postgres
    database_url: SecretStr | None = None
    db_secret_arn: str | None = None
    db_app_secret_arn: str | None = None
    """``migrate`` only: the services' credentials, whose role it creates and grants."""
    db_host: str | None = None
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_name: str = "order_router"
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=4, ge=1)
    db_connect_timeout_s: float = Field(default=3.0, gt=0)
    db_statement_timeout_ms: int = Field(default=2000, ge=100)

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = ""
    redis_timeout_s: float = Field(default=0.25, gt=0)

    # Routing and learning
    profile_cache_ttl_s: int = Field(default=300, ge=1)
    market_data_ttl_s: float = Field(default=1.0, gt=0)
    profile_max_age_s: int = Field(default=86_400, ge=1)
    market_stats_max_age_s: float = Field(default=900.0, gt=0)
    """Profiles' market figures older than this exclude their broker (STALE_MARKET_DATA): the
    statistics refresh runs every minute of the session, so 15 minutes is many missed runs."""
    ewma_alpha: float = Field(default=0.02, gt=0, le=1)
    """What one outcome discounts of a profile's earlier evidence: it keeps ``1 - ewma_alpha``
    (docs/routing-engine.md, "Learning")."""
    exploration: bool = True
    """Thompson sampling within a bounded cost on submitted orders (docs/routing-engine.md)."""
    exploration_seed: int | None = None
    """Seed of the exploration draws (benchmarks replay a run); ``None`` draws from the OS."""
    exploration_max_inr: float = Field(default=10.0, ge=0)
    exploration_max_bps: float = Field(default=5.0, ge=0)
    broker_timeout_ms: int = Field(default=2_000, ge=10)
    analytics_cache_ttl_s: int = Field(default=60, ge=1)
    reconcile_after_s: float = Field(default=120.0, gt=0)
    """An order still unanswered this long after it was stored is finished by the reconciler
    (docs/api.md, "Crash recovery"). Keep it above the ``route_order`` timeout (29 s) so that
    a live request is never overtaken."""
    poll_after_s: float = Field(default=60.0, gt=0)
    """A placed child without a terminal report this long (and not polled for as long) is
    polled at its broker (docs/execution-tracking.md, "Reconciliation by polling")."""
    poll_max_age_s: float = Field(default=86_400.0, gt=0)
    """Children placed longer ago than this are no longer polled (day orders end with the day)."""
    poll_batch: int = Field(default=100, ge=1, le=1_000)
    """Children polled per reconciler run."""

    # Analytics roll-ups, partitions and retention (docs/data-layer.md)
    rollup_settle_s: int = Field(default=300, ge=0)
    """An hour is rolled up this long after it ends: a transaction stamped inside it has
    committed by then (statements are bounded far below it)."""
    rollup_recheck_hours: int = Field(default=2, ge=0)
    """Closed hours each run rolls again, folding in rows that arrived after their hour."""
    rollup_max_hours: int = Field(default=744, ge=1)
    """Hours one run rolls at most (a month); a lagging job catches up over several runs."""
    partition_ahead_days: int = Field(default=62, ge=1)
    """Monthly partitions of ``execution_metrics`` are created this far ahead."""
    rollup_statement_timeout_ms: int = Field(default=240_000, ge=1_000)
    """The roll-up job's statements read hours of raw rows: their own, longer timeout."""
    execution_retention_days: int = Field(default=400, ge=2)
    """Raw execution rows older than this are dropped a partition at a time; roll-ups stay."""

    # Pre-trade risk (docs/risk.md); per-trader overrides live in trader_risk_limits
    enforce_market_hours: bool = True
    """``False`` skips the market-hours rule: local mode and tests only (refused elsewhere)."""
    risk_max_order_quantity: int = Field(default=100_000, ge=1)
    risk_max_order_value_inr: Decimal = Field(default=Decimal(10_000_000), gt=0)
    risk_max_open_orders: int = Field(default=200, ge=1)
    instrument_cache_ttl_s: float = Field(default=60.0, ge=0)

    # Events
    event_bus_name: str = "order-router"
    event_bus_endpoint_url: str | None = None

    # Alarms shown to operators (GET /api/v1/admin/alarms)
    alarm_source: Literal["cloudwatch", "local"] | None = None
    """``cloudwatch`` (the stack, with ``alarm_name_prefix``) or ``local`` (local mode evaluates
    the same definitions on its own metrics); unset answers 503."""
    alarm_name_prefix: str | None = None
    """The stack's alarm names start with it (``order-router-<stage>-``)."""

    # WebSocket push and trader identity
    ws_management_endpoint: str | None = None
    jwt_issuer: str = "http://127.0.0.1:8080/local-issuer"
    jwt_audience: str = "order-router"
    jwks_url: str | None = None
    local_jwt_secret: SecretStr | None = None
    aws_region: str = Field(default="ap-south-1", validation_alias="AWS_REGION")

    # Brokers
    broker_secrets_arn: str | None = None
    broker_secrets_json: SecretStr | None = None
    paper_broker_seed: int = 7
    # Trader broker connections (docs/brokers.md): tokens under envelope encryption.
    connection_kms_key_id: str | None = None
    """KMS key (ARN or alias) that wraps the connections' data keys (AWS)."""
    local_connection_key: SecretStr | None = None
    """64 hex characters: local mode's key-encryption key when there is no KMS key."""

    # Market data (docs/market-data.md)
    market_data_source: Literal["profiles", "kite"] = "profiles"
    """``kite``: quotes and the instrument master from Kite's market-data API on the platform's
    own connection; ``profiles``: the profiles' last prices (tests, a stage without one)."""
    market_data_base_url: str = "https://api.kite.trade"
    """Kite's API root, or the local Kite simulator's URL in local mode."""
    market_data_api_key: str | None = None
    """The platform Kite app's API key (not a trader's)."""
    market_data_token_ref: str = "market-data/kite"  # noqa: S105 (a reference, not a secret)
    market_data_secret_arn: str | None = None
    """The secret holding the token (AWS: its own, apart from the brokers'); unset reads it from
    the broker secret store (local mode, tests)."""
    """Secret-store reference of the platform session's access token."""
    market_data_timeout_ms: int = Field(default=2_000, ge=10)
    market_quote_max_age_s: float = Field(default=30.0, gt=0)
    """A quote the exchange stamped longer ago than this is stale: not used, with a reason."""

    @model_validator(mode="after")
    def _database_configured(self) -> Settings:
        if self.database_url is None and (self.db_secret_arn is None or self.db_host is None):
            raise ValueError(
                "configure Postgres: ROUTER_DATABASE_URL, "
                "or ROUTER_DB_SECRET_ARN with ROUTER_DB_HOST"
            )
        return self

    @model_validator(mode="after")
    def _market_hours_enforced_where_it_matters(self) -> Settings:
        if not self.enforce_market_hours and self.stage not in ("local", "test"):
            raise ValueError("enforce_market_hours may be false only in local and test stages")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The validated settings of this process, read once (cold start)."""
    return Settings()


def lambda_environment(**values: str | int | float | None) -> dict[str, str]:
    """Environment variables for a function, keyed by :class:`Settings` field names.

    Parameters
    ----------
    **values
        Field names of :class:`Settings` and their values; ``None`` values are left out.

    Returns
    -------
    dict[str, str]
        ``{"ROUTER_<FIELD>": "<value>"}``.

    Raises
    ------
    KeyError
        When a name is not a field of :class:`Settings`, so a typo in the stack fails synthesis.
    """
    env: dict[str, str] = {}
    for name, value in values.items():
        if name not in Settings.model_fields:
            raise KeyError(f"{name} is not a setting")
        if value is not None:
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env
