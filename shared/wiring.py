"""Composition root: validated settings -> adapters -> services, built lazily, once per container.

Handlers ask for the one service they call (``get_wiring().routing``); nothing connects until a
request needs it, so a cold start does no I/O and pays only for the imports it uses. Tests build
a :class:`Wiring` from their own settings and may replace any part through ``overrides``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    import redis

    from shared.adapters.apigw_push import ApiGatewayNotifier
    from shared.adapters.auth.jwt_verifier import JwtVerifier
    from shared.adapters.brokers.registry import BrokerGatewayRegistry
    from shared.adapters.postgres.analytics import PostgresAnalyticsRepository
    from shared.adapters.postgres.broker_links import PostgresBrokerLinkStore
    from shared.adapters.postgres.brokers import PostgresBrokerRepository
    from shared.adapters.postgres.executions import PostgresExecutionRepository
    from shared.adapters.postgres.orders import PostgresOrderRepository
    from shared.adapters.postgres.outbox import PostgresOutbox
    from shared.adapters.postgres.pool import Database
    from shared.adapters.postgres.profiles import PostgresProfileRepository
    from shared.adapters.postgres.quarantine import PostgresQuarantineRepository
    from shared.adapters.postgres.reconcile import PostgresStuckOrders
    from shared.adapters.postgres.risk import PostgresRiskState
    from shared.adapters.redis.client import RedisGuard
    from shared.adapters.redis.connections import RedisConnectionRegistry
    from shared.adapters.redis.quote_cache import RedisQuoteCache
    from shared.adapters.redis.rate_counter import RedisRateCounter
    from shared.domain.market import MarketStatistics
    from shared.ports import (
        AlarmStatus,
        BrokerSessions,
        EventPublisher,
        MarketData,
        MarketDataSource,
        SecretSealer,
        SecretStore,
    )
    from shared.services.admin import AdminService
    from shared.services.analytics import AnalyticsService
    from shared.services.broker_links import BrokerLinkService
    from shared.services.connections import ConnectionService
    from shared.services.health import HealthProbe
    from shared.services.market import MarketRefresh
    from shared.services.orders import OrderQueries
    from shared.services.profiles import ProfileService
    from shared.services.reconcile import Reconciler
    from shared.services.risk import CachedInstruments, RiskService
    from shared.services.rollup import RollupJob
    from shared.services.routing import RoutingService
    from shared.services.tracking import ExecutionTracker
    from shared.services.webhooks import WebhookService


def utc_now() -> datetime:
    """The current time, UTC and tz-aware (the one clock the services are given)."""
    return datetime.now(UTC)


class Wiring:
    """Every adapter and service of one process, each created on first use."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.settings = settings
        # Replace a part before first use: a test passes e.g. publisher=FakePublisher().
        for name, value in overrides.items():
            if name not in type(self).__dict__:
                raise AttributeError(f"Wiring has no part called {name}")
            self.__dict__[name] = value

    # -- drivers ---------------------------------------------------------------------------

    @cached_property
    def database(self) -> Database:
        """The Postgres pool (credentials from the URL, or Secrets Manager in AWS)."""
        from shared.adapters.postgres.pool import Database, create_pool

        secret = None
        if self.settings.database_url is None and self.settings.db_secret_arn:
            from aws_lambda_powertools.utilities.parameters import get_secret

            secret = get_secret(self.settings.db_secret_arn, transform="json", max_age=300)
        return Database(create_pool(self.settings, secret))

    @cached_property
    def redis(self) -> redis.Redis:
        """The Redis client (connects on first command)."""
        from shared.adapters.redis.client import create_redis

        return create_redis(self.settings)

    @cached_property
    def redis_guard(self) -> RedisGuard:
        """One circuit for every Redis adapter of the process."""
        from shared.adapters.redis.client import RedisGuard

        return RedisGuard()

    # -- repositories ------------------------------------------------------------------------

    @cached_property
    def brokers(self) -> PostgresBrokerRepository:
        """Broker configuration."""
        from shared.adapters.postgres.brokers import PostgresBrokerRepository

        return PostgresBrokerRepository(self.database)

    @cached_property
    def profile_repository(self) -> PostgresProfileRepository:
        """Broker profiles in Postgres."""
        from shared.adapters.postgres.profiles import PostgresProfileRepository

        return PostgresProfileRepository(self.database)

    @cached_property
    def orders(self) -> PostgresOrderRepository:
        """Orders, decisions and child orders."""
        from shared.adapters.postgres.orders import PostgresOrderRepository

        return PostgresOrderRepository(self.database)

    @cached_property
    def executions(self) -> PostgresExecutionRepository:
        """Execution metrics."""
        from shared.adapters.postgres.executions import PostgresExecutionRepository

        return PostgresExecutionRepository(self.database)

    @cached_property
    def analytics_repository(self) -> PostgresAnalyticsRepository:
        """Execution analytics queries."""
        from shared.adapters.postgres.analytics import PostgresAnalyticsRepository

        return PostgresAnalyticsRepository(self.database)

    @cached_property
    def quarantine(self) -> PostgresQuarantineRepository:
        """Execution reports held because they cannot be true."""
        from shared.adapters.postgres.quarantine import PostgresQuarantineRepository

        return PostgresQuarantineRepository(self.database)

    @cached_property
    def outbox(self) -> PostgresOutbox:
        """The event outbox."""
        from shared.adapters.postgres.outbox import PostgresOutbox

        return PostgresOutbox(self.database)

    @cached_property
    def stuck_orders(self) -> PostgresStuckOrders:
        """Orders whose answer was never written (the reconciler's input)."""
        from shared.adapters.postgres.reconcile import PostgresStuckOrders

        return PostgresStuckOrders(self.database)

    # -- other adapters ----------------------------------------------------------------------

    @cached_property
    def rate_counter(self) -> RedisRateCounter:
        """Orders sent per broker and second, shared by every container."""
        from shared.adapters.redis.rate_counter import RedisRateCounter

        return RedisRateCounter(
            self.redis, prefix=self.settings.redis_key_prefix, guard=self.redis_guard
        )

    @cached_property
    def profiles(self) -> ProfileService:
        """Profiles through the Redis cache (read with the rate counts for routing)."""
        from shared.adapters.redis.profile_cache import RedisProfileCache
        from shared.adapters.redis.routing_inputs import RedisRoutingInputs
        from shared.services.profiles import ProfileService

        cache = RedisProfileCache(
            self.redis,
            ttl_s=self.settings.profile_cache_ttl_s,
            prefix=self.settings.redis_key_prefix,
            guard=self.redis_guard,
        )
        inputs = RedisRoutingInputs(self.redis, cache, self.rate_counter, guard=self.redis_guard)
        return ProfileService(self.profile_repository, cache, self.brokers, inputs=inputs)

    @cached_property
    def market(self) -> MarketData:
        """Arrival quotes: the market-data source's (``kite``) or the profiles' last prices.

        Either way cached for ``market_data_ttl_s`` (one second): in Redis, shared by every
        container, for the source's; in process for the profiles'.
        """
        if self.settings.market_data_source == "kite":
            from shared.services.market import LiveMarketData

            return LiveMarketData(
                self.market_source,
                self.quote_cache,
                clock=self.clock,
                max_age_s=self.settings.market_quote_max_age_s,
                service_name=self.settings.service_name,
            )
        from shared.services.profiles import CachedMarketData, ProfileQuotes

        return CachedMarketData(ProfileQuotes(self.profiles), ttl_s=self.settings.market_data_ttl_s)

    @cached_property
    def publisher(self) -> EventPublisher:
        """EventBridge (endpoint from settings, so local mode can point elsewhere)."""
        from shared.adapters.eventbridge import EventBridgePublisher

        def client() -> Any:
            import boto3

            return boto3.client(
                "events",
                region_name=self.settings.aws_region,
                endpoint_url=self.settings.event_bus_endpoint_url,
            )

        return EventBridgePublisher(client, self.settings.event_bus_name)

    @cached_property
    def gateway(self) -> BrokerGatewayRegistry:
        """Broker adapters by broker id.

        Paper brokers from their stored behaviour, real ones from their adapter settings with
        credentials from the secret store.
        """
        from shared.adapters.brokers.registry import BrokerGatewayRegistry

        return BrokerGatewayRegistry(
            self.brokers,
            market=self.market,
            seed=self.settings.paper_broker_seed,
            clock=utc_now,
            secrets=self.secrets,
            accounts=self.broker_links,
        )

    @cached_property
    def connection_registry(self) -> RedisConnectionRegistry:
        """WebSocket connections and their filters, in Redis."""
        from shared.adapters.redis.connections import RedisConnectionRegistry

        return RedisConnectionRegistry(
            self.redis, prefix=self.settings.redis_key_prefix, guard=self.redis_guard
        )

    @cached_property
    def notifier(self) -> ApiGatewayNotifier:
        """Pushes to WebSocket connections through the API Gateway management API."""
        from shared.adapters.apigw_push import ApiGatewayNotifier

        return ApiGatewayNotifier(
            self.connection_registry,
            endpoint_url=self.settings.ws_management_endpoint,
            region=self.settings.aws_region,
            service_name=self.settings.service_name,
        )

    @cached_property
    def token_verifier(self) -> JwtVerifier:
        """Trader tokens: RS256 from the user pool's JWKS, or the local secret in local mode."""
        from shared.adapters.auth.jwt_verifier import JwtVerifier

        return JwtVerifier.from_settings(self.settings)

    @cached_property
    def alarm_status(self) -> AlarmStatus:
        """The stack's alarms: CloudWatch in AWS, local mode's own evaluation locally."""
        from shared.adapters.cloudwatch_alarms import CloudWatchAlarmStatus
        from shared.adapters.redis.metrics import LocalAlarmStatus, RedisMetricStore
        from shared.domain.errors import MonitoringUnavailableError
        from shared.observability import NAMESPACE

        if self.settings.alarm_source == "cloudwatch":
            return CloudWatchAlarmStatus(
                self.settings.alarm_name_prefix or "", region=self.settings.aws_region
            )
        if self.settings.alarm_source == "local":
            return LocalAlarmStatus(
                RedisMetricStore(self.redis, prefix=self.settings.redis_key_prefix),
                namespace=NAMESPACE,
                dimensions={"service": self.settings.service_name},
            )
        raise MonitoringUnavailableError("no alarm source configured (alarm_source)")

    # -- services ----------------------------------------------------------------------------

    @cached_property
    def connections(self) -> ConnectionService:
        """The WebSocket routes' service (``ws_connect``)."""
        from shared.adapters.postgres.admin import PostgresBrokerAdministration
        from shared.services.connections import ConnectionService

        # The status action reads Postgres; the pool opens on its first use only.
        return ConnectionService(
            self.token_verifier,
            self.connection_registry,
            self.notifier,
            service_name=self.settings.service_name,
            brokers=PostgresBrokerAdministration(self.database),
            orders=self.orders,
        )

    @cached_property
    def order_queries(self) -> OrderQueries:
        """A trader's reads of their own orders."""
        from shared.services.orders import OrderQueries

        return OrderQueries(self.orders, history=self.orders)

    @cached_property
    def analytics(self) -> AnalyticsService:
        """Per-user execution analytics, cached for a minute."""
        from shared.adapters.redis.analytics_cache import RedisAnalyticsCache
        from shared.services.analytics import AnalyticsService

        cache = RedisAnalyticsCache(
            self.redis,
            ttl_s=self.settings.analytics_cache_ttl_s,
            prefix=self.settings.redis_key_prefix,
            guard=self.redis_guard,
        )
        return AnalyticsService(self.analytics_repository, cache)

    @cached_property
    def tracker(self) -> ExecutionTracker:
        """The execution-tracking service."""
        from shared.services.tracking import ExecutionTracker

        return ExecutionTracker(
            executions=self.executions,
            brokers=self.brokers,
            profiles=self.profiles,
            notifier=self.notifier,
            alpha=self.settings.ewma_alpha,
            clock=utc_now,
            orders=self.orders,
        )

    @cached_property
    def secrets(self) -> SecretStore:
        """Broker secrets: Secrets Manager in AWS, a JSON setting locally."""
        from shared.adapters.secrets import JsonSecretStore, SecretsManagerStore

        if self.settings.broker_secrets_arn:
            return SecretsManagerStore(self.settings.broker_secrets_arn)
        document = self.settings.broker_secrets_json
        return JsonSecretStore(document.get_secret_value() if document else None)

    @cached_property
    def webhooks(self) -> WebhookService:
        """Broker webhook ingestion."""
        from shared.adapters.brokers.webhooks.reader import BrokerWebhookReader
        from shared.services.webhooks import WebhookService

        return WebhookService(
            brokers=self.brokers,
            secrets=self.secrets,
            reader=BrokerWebhookReader(),
            orders=self.orders,
            executions=self.executions,
            quarantine=self.quarantine,
            outbox=self.outbox,
            publisher=self.publisher,
            clock=utc_now,
        )

    @cached_property
    def clock(self) -> Callable[[], datetime]:
        """The risk service's clock (tests replace it with one inside market hours)."""
        return utc_now

    @cached_property
    def risk_state(self) -> PostgresRiskState:
        """Kill switches (audited), open orders and per-trader limits."""
        from shared.adapters.postgres.risk import PostgresRiskState

        return PostgresRiskState(self.database)

    @cached_property
    def instruments(self) -> CachedInstruments:
        """The instrument master, cached in process for ``instrument_cache_ttl_s``."""
        from shared.adapters.postgres.risk import PostgresInstrumentRepository
        from shared.services.risk import CachedInstruments

        return CachedInstruments(
            PostgresInstrumentRepository(self.database),
            ttl_s=self.settings.instrument_cache_ttl_s,
        )

    @cached_property
    def risk(self) -> RiskService:
        """Pre-trade risk checks (docs/risk.md)."""
        from shared.domain.risk import default_calendar
        from shared.services.risk import RiskLimits, RiskService

        return RiskService(
            state=self.risk_state,
            instruments=self.instruments,
            market=self.market,
            calendar=default_calendar(),
            limits=RiskLimits(
                max_order_quantity=self.settings.risk_max_order_quantity,
                max_order_value_inr=self.settings.risk_max_order_value_inr,
                max_open_orders=self.settings.risk_max_open_orders,
            ),
            clock=self.clock,
            enforce_market_hours=self.settings.enforce_market_hours,
            service_name=self.settings.service_name,
        )

    @cached_property
    def routing(self) -> RoutingService:
        """The smart-order service."""
        from shared.domain.engine import EngineConfig
        from shared.services.placement import ChildPlacer
        from shared.services.routing import RoutingService

        placer = ChildPlacer(
            gateway=self.gateway,
            rate_counter=self.rate_counter,
            clock=utc_now,
            broker_timeout_s=self.settings.broker_timeout_ms / 1000,
            max_profile_age_s=self.settings.profile_max_age_s,
            max_market_age_s=self.settings.market_stats_max_age_s,
        )
        return RoutingService(
            profiles=self.profiles,
            orders=self.orders,
            placer=placer,
            publisher=self.publisher,
            outbox=self.outbox,
            market=self.market,
            risk=self.risk,
            clock=utc_now,
            engine_config=EngineConfig(
                max_profile_age_s=self.settings.profile_max_age_s,
                max_market_age_s=self.settings.market_stats_max_age_s,
                evidence_discount=1 - self.settings.ewma_alpha,
                exploration_max_inr=self.settings.exploration_max_inr,
                exploration_max_bps=self.settings.exploration_max_bps,
            ),
            alpha=self.settings.ewma_alpha,
            explore=self._exploration_seeds(),
            access=self.broker_links.unavailable,
            statistics=self._market_statistics(),
        )

    def _market_statistics(self) -> Callable[[str], MarketStatistics | None] | None:
        # Day-one profiles need a live source's depth and volume; the profiles' own last prices
        # (market_data_source "profiles") know nothing of a symbol without profiles.
        from shared.services.market import LiveMarketData

        market = self.market
        return market.statistics if isinstance(market, LiveMarketData) else None

    def _exploration_seeds(self) -> Callable[[], int] | None:
        # Randomness enters here, never in the domain: the engine gets one seed per order.
        if not self.settings.exploration:
            return None
        seed = self.settings.exploration_seed
        source = random.Random(seed) if seed is not None else random.SystemRandom()  # noqa: S311
        return lambda: source.getrandbits(63)

    @cached_property
    def reconciler(self) -> Reconciler:
        """Finishes orders stuck between their decision and their placement."""
        from shared.adapters.postgres.polling import PostgresQuietChildren
        from shared.services.polling import ChildPoller
        from shared.services.reconcile import Reconciler

        timeout_s = self.settings.broker_timeout_ms / 1000
        poller = ChildPoller(
            children=PostgresQuietChildren(self.database),
            brokers=self.gateway,
            executions=self.executions,
            publisher=self.publisher,
            outbox=self.outbox,
            older_than_s=self.settings.poll_after_s,
            max_age_s=self.settings.poll_max_age_s,
            timeout_s=timeout_s,
            batch=self.settings.poll_batch,
        )
        return Reconciler(
            stuck=self.stuck_orders,
            brokers=self.gateway,
            publisher=self.publisher,
            outbox=self.outbox,
            older_than_s=self.settings.reconcile_after_s,
            lookup_timeout_s=timeout_s,
            poller=poller,
        )

    @cached_property
    def admin(self) -> AdminService:
        """The admin API's service (``functions/admin``)."""
        from shared.adapters.postgres.admin import PostgresBrokerAdministration
        from shared.adapters.redis.profile_cache import RedisProfileCache
        from shared.services.admin import AdminService

        cache = RedisProfileCache(
            self.redis,
            ttl_s=self.settings.profile_cache_ttl_s,
            prefix=self.settings.redis_key_prefix,
            guard=self.redis_guard,
        )
        return AdminService(
            brokers=PostgresBrokerAdministration(self.database),
            cache=cache,
            notifier=self.notifier,
            quarantine=self.quarantine,
        )

    @cached_property
    def link_store(self) -> PostgresBrokerLinkStore:
        """Traders' broker connections and OAuth states."""
        from shared.adapters.postgres.broker_links import PostgresBrokerLinkStore

        return PostgresBrokerLinkStore(self.database)

    @cached_property
    def sealer(self) -> SecretSealer:
        """Envelope encryption of broker tokens: KMS in AWS, the local key otherwise."""
        from shared.adapters.crypto import KmsEnvelopeSealer, LocalKeySealer, UnconfiguredSealer

        if self.settings.connection_kms_key_id:

            def client() -> Any:
                import boto3

                return boto3.client("kms", region_name=self.settings.aws_region)

            return KmsEnvelopeSealer(client, self.settings.connection_kms_key_id)
        key = self.settings.local_connection_key
        if key is None:
            return UnconfiguredSealer()
        return LocalKeySealer(bytes.fromhex(key.get_secret_value()))

    @cached_property
    def broker_sessions(self) -> BrokerSessions:
        """The brokers' login APIs (app credentials from the secret store)."""
        from shared.adapters.brokers.sessions import HttpBrokerSessions

        return HttpBrokerSessions(self.secrets)

    @cached_property
    def broker_links(self) -> BrokerLinkService:
        """Trader broker connections (and the accounts real brokers' orders go out under)."""
        import secrets

        from shared.services.broker_links import BrokerLinkService

        return BrokerLinkService(
            links=self.link_store,
            sealer=self.sealer,
            sessions=self.broker_sessions,
            brokers=self.brokers,
            clock=utc_now,
            new_state=lambda: secrets.token_urlsafe(32),
        )

    @cached_property
    def market_source(self) -> MarketDataSource:
        """Kite's market-data API on the platform's connection (key in settings, token secret)."""
        from shared.adapters.brokers.kite_market import KiteMarketData
        from shared.adapters.secrets import SecretsManagerStore

        ref = self.settings.market_data_token_ref
        arn = self.settings.market_data_secret_arn
        store = SecretsManagerStore(arn) if arn else self.secrets

        def token() -> str:
            current = store.get(ref)
            return current[0] if current else ""

        return KiteMarketData(
            api_key=self.settings.market_data_api_key or "",
            access_token=token,
            base_url=self.settings.market_data_base_url,
            timeout_s=self.settings.market_data_timeout_ms / 1000,
        )

    @cached_property
    def quote_cache(self) -> RedisQuoteCache:
        """Quotes shared by every container for ``market_data_ttl_s``."""
        from shared.adapters.redis.quote_cache import RedisQuoteCache

        return RedisQuoteCache(
            self.redis,
            ttl_ms=max(1, int(self.settings.market_data_ttl_s * 1000)),
            prefix=self.settings.redis_key_prefix,
            guard=self.redis_guard,
        )

    @cached_property
    def market_refresh(self) -> MarketRefresh:
        """The scheduled market-data jobs (``market_refresh``; ``order-router refresh-market``)."""
        from shared.adapters.postgres.market import PostgresMarketStatistics
        from shared.services.market import MarketRefresh

        profiles = self.profiles

        def refresh_profiles(symbols: Sequence[str]) -> None:
            for symbol in symbols:
                profiles.refresh(symbol)

        return MarketRefresh(
            source=self.market_source,
            instruments=self.instruments,
            statistics=PostgresMarketStatistics(self.database),
            cache=self.quote_cache,
            on_statistics=refresh_profiles,
            clock=self.clock,
            max_age_s=self.settings.market_quote_max_age_s,
        )

    @cached_property
    def health_probe(self) -> HealthProbe:
        """Probes brokers in an outage episode (run with the market refresh's statistics)."""
        from shared.services.health import HealthProbe

        profiles = self.profiles

        def refresh_profiles(symbols: Sequence[str]) -> None:
            for symbol in symbols:
                profiles.refresh(symbol)

        return HealthProbe(
            ledger=self.profile_repository,
            brokers=self.gateway,
            on_recovered=refresh_profiles,
            timeout_s=self.settings.broker_timeout_ms / 1000,
        )

    @cached_property
    def rollup_job(self) -> RollupJob:
        """Hourly analytics roll-ups, partitions ahead and retention of execution_metrics."""
        from datetime import timedelta

        from shared.adapters.postgres.rollups import PostgresRollups
        from shared.services.rollup import RollupJob, RollupPolicy

        settings = self.settings
        return RollupJob(
            PostgresRollups(
                self.database, statement_timeout_ms=settings.rollup_statement_timeout_ms
            ),
            clock=utc_now,
            policy=RollupPolicy(
                settle=timedelta(seconds=settings.rollup_settle_s),
                recheck_hours=settings.rollup_recheck_hours,
                max_hours=settings.rollup_max_hours,
                partition_ahead=timedelta(days=settings.partition_ahead_days),
                retention=timedelta(days=settings.execution_retention_days),
            ),
        )

    def close(self) -> None:
        """Close the Postgres pool if this process opened it (a no-op otherwise)."""
        if "database" in self.__dict__:
            self.database.close()

    def health(self) -> dict[str, bool]:
        """Whether Postgres and Redis answer right now."""
        import redis as redis_lib

        try:
            redis_up = bool(self.redis.ping())
        except redis_lib.RedisError:
            redis_up = False
        return {"postgres": self.database.ping(), "redis": redis_up}


@lru_cache(maxsize=1)
def get_wiring() -> Wiring:
    """The process's wiring, from settings validated at cold start."""
    return Wiring(get_settings())
