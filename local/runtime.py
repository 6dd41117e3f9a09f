"""The local runtime: data services, handler environment, and the servers around the handlers.

``order-router run`` starts Postgres and Redis (reclaiming any a killed run left behind),
migrates, seeds and sets the environment, then runs :meth:`LocalRuntime.serve` (HTTP server,
internal server, WebSocket server, event bus, outbox relay and reconciler timers) on one asyncio
loop. The Lambda handlers are the production ones, configured like in AWS through
``ROUTER_*`` environment variables built with :func:`shared.settings.lambda_environment`.

Each function behaves as one warm container with a concurrency of one: a Powertools resolver
keeps the current event in module state, so two invocations of one function at the same time in
one process could read each other's event (and caller). Invocations of *different* functions run
in parallel, in worker threads, never on the event loop: handlers call back into this process
over HTTP (PutEvents, ``@connections``, on the signed internal server) and the loop must stay
free to answer them. ``run --workers N`` gives each function of :data:`POOLED_FUNCTIONS` N
containers instead: N worker processes, each running one invocation at a time with its own
Postgres pool and Redis client, as N warm Lambda containers do (docs/capacity.md).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import importlib
import json
import logging
import multiprocessing
import os
import pickle
import secrets
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvicorn

from local.apigw import INVOCATION_TIMING, LocalLambdaContext
from local.bus import LocalEventBus, msk_target
from local.containers import ContainerPool
from local.internal_server import InternalCredentials
from shared.settings import Settings

logger = logging.getLogger("order_router.local")

HOST = "127.0.0.1"
LOCAL_ISSUER = "urn:order-router:local-issuer"
"""``iss`` of local tokens; independent of ports so tokens survive a restart on other ports."""
AUDIENCE = "order-router"
BUS_NAME = "order-router"
DATABASE = "order_router"
SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret
REGION = "ap-south-1"
MARKET_TOKEN_REF = "market-data/kite"  # noqa: S105 - a secret-store reference


@dataclass(frozen=True)
class MarketFeed:
    """The Kite simulator local mode takes its market data from, and the platform credential.

    The token is the platform's own session at the simulator (not a trader's), stored under
    ``market-data/kite`` as in AWS (docs/market-data.md).
    """

    url: str
    api_key: str
    token: str


FUNCTIONS = (
    "route_order",
    "broker_webhook",
    "track_execution",
    "ws_connect",
    "outbox_relay",
    "reconcile",
    "admin",
    "broker_connections",
    "market_refresh",
    "rollup_analytics",
)
POOLED_FUNCTIONS = ("route_order", "broker_webhook", "track_execution")
"""The functions that get N containers (worker processes) with ``run --workers N``."""
CONTAINER_DB_POOL_MAX = 2
"""A container's ``ROUTER_DB_POOL_MAX`` in a worker process, as deployed (infra/capacity.py)."""
TIMEOUTS_S = {
    "route_order": 29,
    "admin": 29,
    "broker_webhook": 29,
    "broker_connections": 29,
    "outbox_relay": 60,
    "reconcile": 60,
    "market_refresh": 300,
    "rollup_analytics": 300,
}
"""Function timeouts as deployed (API Gateway's 29 s integration limit; the schedules' minute)."""


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeConfig:
    """Ports and folders of one local run (all servers bind 127.0.0.1 only)."""

    data_dir: Path
    http_port: int = 8080
    ws_port: int = 8081
    internal_port: int = 8082
    pg_port: int = 54329
    redis_port: int = 63799
    relay_interval_s: float = 5.0
    reconcile_interval_s: float = 10.0
    rollup_interval_s: float = 60.0
    """The analytics roll-up (every 15 minutes in AWS): each run only rolls what closed."""
    reconcile_after_s: float = Settings.model_fields["reconcile_after_s"].default
    poll_after_s: float = 15.0
    """Children without a terminal report this long are polled by the reconcile timer (shorter
    than in AWS: a withheld simulator postback is recovered while one watches)."""
    verbose: bool = False
    enforce_market_hours: bool = True
    """``False`` (``run --ignore-market-hours``) routes at any hour; docs/risk.md."""
    market_interval_s: float = 60.0
    """Period of the market-statistics refresh (EventBridge Scheduler's minute in AWS)."""
    workers: int = 1
    """Containers per function of :data:`POOLED_FUNCTIONS`; 1 runs them in this process."""
    seed: bool = True
    """``False`` (``run --no-seed``): no paper brokers, profiles or seeded instruments."""

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP server."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def ws_url(self) -> str:
        """URL of the WebSocket server."""
        return f"ws://{HOST}:{self.ws_port}"

    @property
    def internal_url(self) -> str:
        """Base URL of the signed internal server (management API and PutEvents)."""
        return f"http://{HOST}:{self.internal_port}"


def jwt_secret(data_dir: Path, *, create: bool) -> str:
    """The local issuer's HS256 secret, kept in ``<data_dir>/jwt-secret`` (mode 0600).

    Parameters
    ----------
    data_dir
        The run's data folder.
    create
        Generate and store a secret when there is none (``run``); otherwise raise.

    Returns
    -------
    str
        The secret (64 hex characters: 256 bits, RFC 7518's minimum for HS256).

    Raises
    ------
    FileNotFoundError
        When there is no secret and ``create`` is false (``run`` was never started there).
    """
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise FileNotFoundError(f"{path} not found: start `order-router run` once first")
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    # Created 0600 from the start: never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def handler_environment(
    config: RuntimeConfig,
    *,
    database_url: str,
    redis_url: str,
    secret: str,
    credentials: InternalCredentials,
    broker_secrets: dict[str, str] | None = None,
    connection_key: str | None = None,
    market: MarketFeed | None = None,
) -> dict[str, str]:
    """Every environment variable the handlers read in local mode.

    Parameters
    ----------
    config
        Ports (the event bus and management API endpoints are the internal server).
    database_url, redis_url
        The embedded servers.
    secret
        The local issuer's secret.
    credentials
        This run's key pair: boto3 signs the handlers' calls to the internal server with it.
    broker_secrets
        More broker secrets (the simulated brokers' webhook and app secrets).
    connection_key
        The local key-encryption key of traders' broker tokens (64 hex characters).
    market
        The Kite simulator serving market data; ``None`` prices from the profiles.

    Returns
    -------
    dict[str, str]
        ``ROUTER_*`` settings (built with ``lambda_environment``, as the CDK stack does), the
        run's AWS credentials, and Powertools switches.
    """
    from local import seed
    from shared.settings import lambda_environment

    env = lambda_environment(
        stage="local",
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix="",
        event_bus_name=BUS_NAME,
        event_bus_endpoint_url=config.internal_url,
        ws_management_endpoint=config.internal_url,
        reconcile_after_s=config.reconcile_after_s,
        poll_after_s=config.poll_after_s,
        jwt_issuer=LOCAL_ISSUER,
        jwt_audience=AUDIENCE,
        local_jwt_secret=secret,
        broker_secrets_json=json.dumps(
            seed.webhook_secrets()
            | (broker_secrets or {})
            | ({MARKET_TOKEN_REF: market.token} if market is not None else {})
        ),
        local_connection_key=connection_key,
        market_data_source="kite" if market is not None else "profiles",
        market_data_base_url=market.url if market is not None else None,
        market_data_api_key=market.api_key if market is not None else None,
        # One process serves every request (Lambda gives each its own container): room for
        # concurrent requests plus the routing service's parallel placements.
        db_pool_max=16,
        enforce_market_hours=config.enforce_market_hours,
        # No CloudWatch: the handlers' EMF lines are tapped (local/metrics_tap.py) and the
        # stack's alarm definitions evaluated on them.
        alarm_source="local",
    )
    env.update(
        {
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            # Metrics are on: the tap records them and echoes them only with --verbose.
            "POWERTOOLS_METRICS_DISABLED": "false",
            "ORDER_ROUTER_ECHO_METRICS": "true" if config.verbose else "false",
            "POWERTOOLS_LOG_LEVEL": "INFO" if config.verbose else "WARNING",
        }
    )
    return env


def apply_environment(env: dict[str, str]) -> None:
    """Put ``env`` into ``os.environ`` before the first handler import or call.

    A developer's own AWS session or profile is removed so that nothing this process signs can
    be valid in a real account.
    """
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(env)


# -- Lambda invocation -------------------------------------------------------------------------


class Invoker:
    """Runs the production Lambda handlers, one invocation per function (container) at a time.

    Handler modules are imported on first use, after :func:`apply_environment` (Powertools reads
    its switches at import time).

    Parameters
    ----------
    workers
        Containers per function of :data:`POOLED_FUNCTIONS`. With more than one, each of those
        functions gets a pool of ``workers`` processes (started by :meth:`start_workers`): a
        process runs one invocation at a time, so the pool is ``workers`` warm containers.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._locks = {name: threading.Lock() for name in FUNCTIONS}
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._import_lock = threading.Lock()
        self._pools: dict[str, ContainerPool] = {}

    def start_workers(self) -> None:
        """Start every worker process and import its handler (a cold start per container).

        Call after :func:`apply_environment`: spawned processes inherit ``os.environ``.
        """
        if self.workers == 1 or self._pools:
            return
        context = multiprocessing.get_context("spawn")
        main = partial(_container_main, db_pool_max=CONTAINER_DB_POOL_MAX)
        for name in POOLED_FUNCTIONS:
            self._pools[name] = ContainerPool(context, self.workers, main)
        # Every container imports its handler now (its cold start), not on its first request;
        # the functions' containers all at once.
        with ThreadPoolExecutor(len(self._pools)) as warming:
            list(warming.map(lambda item: item[1].broadcast((item[0], None)), self._pools.items()))

    def close(self) -> None:
        """Stop the worker processes (each closes its Postgres pool on the way out)."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke ``functions.<function>.handler.lambda_handler`` with ``event`` (blocking)."""
        pool = self._pools.get(function)
        if pool is not None:
            return pool.invoke((function, event))[0]
        return self.invoke_timed(function, event)[0]

    def invoke_timed(self, function: str, event: dict[str, Any]) -> tuple[Any, float]:
        """:meth:`invoke` in this process; returns the result and the handler's own seconds."""
        handler = self._handler(function)
        context = LocalLambdaContext(
            f"order-router-local-{function}", timeout_s=TIMEOUTS_S.get(function, 30)
        )
        with self._locks[function]:
            started = time.perf_counter()
            return handler(event, context), time.perf_counter() - started

    async def ainvoke(self, function: str, event: dict[str, Any]) -> Any:
        """:meth:`invoke` off the event loop, so it keeps serving meanwhile.

        Sets :data:`local.apigw.INVOCATION_TIMING` in the caller's context: the seconds spent
        waiting for the function's container and in the handler.
        """
        pool = self._pools.get(function)
        started = time.perf_counter()
        if pool is not None:
            result, handler_s = await pool.ainvoke((function, event))
        else:
            result, handler_s = await asyncio.to_thread(self.invoke_timed, function, event)
        INVOCATION_TIMING.set((time.perf_counter() - started - handler_s, handler_s))
        return result

    def _handler(self, function: str) -> Callable[[dict[str, Any], Any], Any]:
        if function not in self._locks:
            raise KeyError(f"unknown function {function}")
        handler = self._handlers.get(function)
        if handler is None:
            with self._import_lock:
                module = importlib.import_module(f"functions.{function}.handler")
                handler = self._handlers[function] = module.lambda_handler
        return handler


_CONTAINER: dict[str, Invoker] = {}
"""``{"invoker": ...}``: the in-process invoker of a worker process (one container)."""


def _container_start(db_pool_max: int) -> None:
    # Runs first in each worker process, before any handler import reads the settings.
    os.environ["ROUTER_DB_POOL_MAX"] = str(db_pool_max)
    os.environ["ROUTER_DB_POOL_MIN"] = "1"
    # Ctrl-C reaches the whole process group; the parent stops the workers after the servers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    from local.metrics_tap import install

    install(echo=os.environ.get("ORDER_ROUTER_ECHO_METRICS") == "true")
    _CONTAINER["invoker"] = Invoker()
    atexit.register(_close_wiring)


def _container_main(conn: Connection, db_pool_max: int) -> None:
    """A worker process (one container): invocations from its pipe, one at a time, until None.

    A message is ``(function, event)``; ``event`` ``None`` only imports the handler (the cold
    start, at ``run`` time). The answer is ``("ok", (result, handler seconds))``, or
    ``("error", exception)`` raised again in the front door (which answers 500).
    """
    _container_start(db_pool_max)
    invoker = _CONTAINER["invoker"]
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the front door is gone
            return
        if message is None:
            return
        function, event = message
        try:
            if event is None:
                invoker._handler(function)
                answer: tuple[str, Any] = ("ok", os.getpid())
            else:
                answer = ("ok", invoker.invoke_timed(function, event))
        except Exception as exc:  # the handler's own crash, for the front door's 500
            # Its traceback stays here (an exception crosses the pipe without it): logged now.
            logger.exception("%s crashed in container pid %d", function, os.getpid())
            answer = ("error", exc)
        _answer(conn, answer)


def _answer(conn: Connection, answer: tuple[str, Any]) -> None:
    try:
        conn.send(answer)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        # Pickled before anything is written: the pipe stays clean for the plain error.
        conn.send(("error", RuntimeError(f"unpicklable answer: {exc!r}")))


# -- schedules --------------------------------------------------------------------------------


class Schedule:
    """Runs a function every ``interval_s``, like its one-minute EventBridge schedule in AWS.

    Parameters
    ----------
    invoker
        Runs the handler.
    function
        ``outbox_relay``, ``reconcile`` or ``market_refresh``.
    interval_s
        Time between runs.
    detail
        The event to send (a Scheduler schedule's input); ``None`` sends an EventBridge
        scheduled event.
    """

    def __init__(
        self,
        invoker: Invoker,
        function: str,
        interval_s: float,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self._invoker = invoker
        self._function = function
        self._interval_s = interval_s
        self._input = detail
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=function, daemon=True)

    def start(self) -> None:
        """Start the schedule."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current run."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [],
                "detail": {},
            }
            if self._input is not None:
                # EventBridge Scheduler delivers the schedule's own input instead.
                event = dict(self._input)
            try:
                result = self._invoker.invoke(self._function, event)
            except Exception:  # a failed run is retried by the next tick, as in AWS
                logger.exception("%s failed", self._function)
                continue
            if isinstance(result, dict) and any(result.values()):
                logger.info("%s: %s", self._function, result)


# -- the servers -------------------------------------------------------------------------------


class LocalRuntime:
    """HTTP, internal and WebSocket servers, event bus and schedules on one event loop.

    Parameters
    ----------
    config
        Ports and intervals.
    credentials
        This run's key pair, which the internal server requires.
    simulator_urls
        The broker simulators' API roots by adapter (local/brokers.py), for what else needs
        them (the market-data adapter reads the Kite simulator's quotes).
    """

    def __init__(
        self,
        config: RuntimeConfig,
        credentials: InternalCredentials,
        *,
        simulator_urls: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.simulator_urls = dict(simulator_urls or {})
        """Adapter (``kite``, ``upstox``, ``dhan``) -> its running simulator's API root."""
        self.invoker = Invoker(config.workers)
        track = functools.partial(self.invoker.invoke, "track_execution")
        # With N tracker containers the bus feeds them N partitions of MSK-shaped batches.
        self.bus = LocalEventBus(
            BUS_NAME,
            track,
            region=REGION,
            deliver_batch=msk_target(track) if config.workers > 1 else None,
            consumers=config.workers,
            spool=config.data_dir / "event-bus-spool.jsonl",
        )

    async def serve(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop`` is set, then shut down in order.

        Parameters
        ----------
        stop
            Set by the caller (signal handlers) to stop.
        on_ready
            Called once every server listens.

        Raises
        ------
        RuntimeError
            When the HTTP or the internal server could not start.
        OSError
            When the WebSocket port could not be bound.
        """
        from local.http_server import build_app
        from local.internal_server import build_internal_app
        from local.metrics_tap import tapped
        from local.ws_server import LiveConnections, WebSocketGateway
        from shared.adapters.auth.jwt_verifier import JwtVerifier
        from shared.settings import get_settings

        loop = asyncio.get_running_loop()
        # Handlers may wait on each other's HTTP calls; a roomy pool keeps a burst of requests
        # from starving the threads that answer them.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="lambda"))
        connections = LiveConnections()
        app = build_app(
            invoke=self.invoker.ainvoke,
            verifier=JwtVerifier.from_settings(get_settings()),
            extra_routes=_dashboard_routes(self.config),
        )
        internal_app = build_internal_app(
            bus=self.bus, connections=connections, credentials=self.credentials
        )
        servers = {
            self.config.api_url: _server(app, self.config.http_port),
            self.config.internal_url: _server(internal_app, self.config.internal_port),
        }
        gateway = WebSocketGateway(
            self.invoker.ainvoke, connections, host=HOST, port=self.config.ws_port
        )
        schedules = [
            Schedule(self.invoker, "outbox_relay", self.config.relay_interval_s),
            Schedule(self.invoker, "reconcile", self.config.reconcile_interval_s),
            Schedule(
                self.invoker,
                "market_refresh",
                self.config.market_interval_s,
                {"job": "statistics"},
            ),
            Schedule(self.invoker, "rollup_analytics", self.config.rollup_interval_s),
        ]
        # The handlers' EMF lines become local metrics (the alarms) while the run serves.
        metrics = contextlib.ExitStack()
        metrics.enter_context(tapped(echo=self.config.verbose))
        await asyncio.to_thread(self.invoker.start_workers)
        self.bus.start()
        tasks = {url: asyncio.create_task(server.serve()) for url, server in servers.items()}
        try:
            for url, server in servers.items():
                while not server.started:
                    if tasks[url].done():
                        raise RuntimeError(f"the HTTP server did not start on {url}")
                    await asyncio.sleep(0.02)
            await gateway.start()
            for schedule in schedules:
                schedule.start()
            if on_ready is not None:
                on_ready()
            await stop.wait()
        finally:
            # Sockets first (their $disconnect needs Redis), then HTTP, then the background work.
            await gateway.stop()
            for server in servers.values():
                server.should_exit = True
            for task in tasks.values():
                with contextlib.suppress(BaseException):
                    await task
            for schedule in schedules:
                schedule.stop()
            await asyncio.to_thread(self.bus.stop)
            await asyncio.to_thread(self.invoker.close)
            _close_wiring()
            metrics.close()


def _dashboard_routes(config: RuntimeConfig) -> list[Any]:
    from local.dashboard import DIST, dashboard_routes
    from shared.settings import get_settings

    def secret() -> str:
        value = get_settings().local_jwt_secret
        if value is None:
            raise RuntimeError("local mode runs without a local JWT secret")
        return value.get_secret_value()

    return dashboard_routes(
        dist=DIST,
        ws_url=config.ws_url,
        stage=lambda: get_settings().stage,
        secret=secret,
        issuer=LOCAL_ISSUER,
        audience=AUDIENCE,
    )


def _server(app: Any, port: int) -> _QuietSignalsServer:
    return _QuietSignalsServer(
        uvicorn.Config(
            app,
            host=HOST,
            port=port,
            lifespan="off",
            access_log=False,
            log_config=None,
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=3,
        )
    )


def _close_wiring() -> None:
    # Close the handlers' Postgres pool before Postgres stops, so its shutdown is quiet.
    import shared.wiring

    if shared.wiring.get_wiring.cache_info().currsize:
        shared.wiring.get_wiring().close()


class _QuietSignalsServer(uvicorn.Server):
    """uvicorn's server without its own signal handling.

    ``uvicorn.Server.serve`` installs SIGINT/SIGTERM handlers and re-raises the signal after
    shutdown; the CLI owns the signals here and stops every server (and Postgres and Redis) in
    order, so the HTTP server only stops when told to.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
