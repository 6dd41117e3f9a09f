"""``order-router``: the local-mode command line (``make run`` calls ``order-router run``).

``run`` starts the whole service on this machine; ``token`` prints a dev JWT; ``submit``,
``analyze``, ``analytics``, ``profiles``, ``order`` and ``watch`` are thin clients of the API;
``quarantine`` lists held execution reports and ``kill-switch`` engages or releases a kill
switch, both straight in the run's database (operators only, until the admin API exists).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.domain.contracts import API_PREFIX, REPLY_MESSAGES, ApiPath
from shared.domain.models import OrderType, Product, RoutingObjective
from shared.settings import Settings

if TYPE_CHECKING:
    from local.runtime import RuntimeConfig
    from local.simulators.fleet import Fleet

DEFAULT_DATA_DIR = ".local"
DEFAULT_HTTP_PORT = 8080
DEFAULT_WS_PORT = 8081
DEFAULT_INTERNAL_PORT = 8082
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DEFAULT_USER = "trader-1"
LOCAL_ADMIN = "local-admin"
"""Subject of an ADMIN token minted without ``--user``."""
TOKEN_TTL_S = 12 * 3600
ENDPOINTS_FILE = "endpoints.json"
CREDENTIALS_FILE = "internal-credentials.json"
"""This run's key pair for the internal server (mode 0600, removed when the run stops)."""
EXAMPLE_ORDER = {
    "symbol": "RELIANCE",
    "side": "BUY",
    "quantity": 100,
    "orderType": "MARKET",
    "routingObjective": "SMART_BALANCE",
}


class CliError(Exception):
    """A failure reported as one ``error: ...`` line and exit status 1 or 2."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# -- run ---------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    import logging

    from local.runtime import RuntimeConfig

    config = RuntimeConfig(
        data_dir=Path(args.data_dir).resolve(),
        http_port=args.http_port,
        ws_port=args.ws_port,
        internal_port=args.internal_port,
        pg_port=args.pg_port,
        redis_port=args.redis_port,
        relay_interval_s=args.relay_interval,
        reconcile_interval_s=args.reconcile_interval,
        reconcile_after_s=args.reconcile_after,
        verbose=args.verbose,
        enforce_market_hours=not args.ignore_market_hours,
        market_interval_s=args.market_interval,
        workers=args.workers,
        seed=not args.no_seed,
    )
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-5s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # One line per request and socket event is the useful log; these libraries' INFO is noise.
    for name in ("yoyo", "botocore", "websockets", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Handlers without metrics of their own make Powertools warn on every invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # SIGTERM during start-up stops like Ctrl-C: the finally blocks stop what already runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from local.services import ServiceStartError, data_dir_lock

    try:
        # The lock proves no live run uses the data dir, so servers found there are orphans.
        with data_dir_lock(config.data_dir):
            return _run_services(config)
    except KeyboardInterrupt:
        print("stopped during start-up", flush=True)
        return 130
    except ServiceStartError as exc:
        raise CliError(str(exc), status=2) from exc


def _check_ports(config: RuntimeConfig) -> None:
    from local.services import port_is_free

    ports = {
        "HTTP API": config.http_port,
        "WebSocket": config.ws_port,
        "internal API": config.internal_port,
        "PostgreSQL": config.pg_port,
        "Redis": config.redis_port,
    }
    if len(set(ports.values())) < len(ports):
        raise CliError(f"ports must differ: {ports}", status=2)
    for what, port in ports.items():
        if not port_is_free(port):
            raise CliError(
                f"port {port} ({what}) is busy: stop what uses it or pass another port", status=2
            )


def _run_services(config: RuntimeConfig) -> int:
    from local.brokers import connection_key, market_feed, start_simulated_brokers
    from local.internal_server import new_credentials
    from local.runtime import (
        LocalRuntime,
        apply_environment,
        handler_environment,
        jwt_secret,
    )
    from local.services import EmbeddedPostgres, EmbeddedRedis, ServiceStartError, Watchdog

    postgres = EmbeddedPostgres(config.data_dir / "postgres", port=config.pg_port, durable=True)
    redis_server = EmbeddedRedis(port=config.redis_port, data_dir=config.data_dir / "redis")
    # A run killed with SIGKILL leaves its servers running: stop them before checking ports.
    reclaimed = [
        name
        for name, server in (("PostgreSQL", postgres), ("Redis", redis_server))
        if server.reclaim()
    ]
    _check_ports(config)
    secret = jwt_secret(config.data_dir, create=True)
    credentials = new_credentials()
    endpoints = config.data_dir / ENDPOINTS_FILE
    credentials_file = config.data_dir / CREDENTIALS_FILE
    watchdog = Watchdog(
        [
            ("PostgreSQL", postgres.running, postgres.start),
            ("Redis", redis_server.running, redis_server.start),
        ]
    )
    fleet = None
    try:
        postgres.start()
        redis_server.start()
        watchdog.start()
        database_url, applied = _prepare_database(postgres)
        fleet = start_simulated_brokers(config.api_url)
        market = market_feed(fleet)
        apply_environment(
            handler_environment(
                config,
                database_url=database_url,
                redis_url=redis_server.url,
                secret=secret,
                credentials=credentials,
                broker_secrets=fleet.secrets,
                connection_key=connection_key(config.data_dir),
                market=market,
            )
        )
        _write_private(
            credentials_file,
            json.dumps(
                {
                    "endpoint": config.internal_url,
                    "accessKeyId": credentials.access_key_id,
                    "secretAccessKey": credentials.secret_access_key,
                    # order-router refresh-market calls the simulator as the platform does.
                    "marketData": {
                        "url": market.url,
                        "apiKey": market.api_key,
                        "token": market.token,
                    },
                }
            ),
        )
        seeded_line = _seed(redis_server.url, fleet, seed_data=config.seed)
        linked = _link_local_trader(fleet)
        market_line = _load_market()
        token = _token(secret, DEFAULT_USER, ("TRADER",), TOKEN_TTL_S)
        lines = [
            f"order-router local mode, data in {config.data_dir}",
            *(
                [f"  Reclaimed   {' and '.join(reclaimed)} left running by a killed run"]
                if reclaimed
                else []
            ),
            f"  PostgreSQL  {database_url}  (migrations applied: {', '.join(applied) or 'none'})",
            f"  Redis       {redis_server.url}",
            seeded_line,
            *(
                f"  Simulated   {name} at {running.url} (broker {linked.get(name, '?')})"
                for name, running in fleet.simulators.items()
            ),
            f"  Market      {market_status(config.enforce_market_hours, datetime.now(UTC))}",
            f"  Quotes      {market.url} (the Kite simulator's /quote, /instruments); "
            f"{market_line}",
            f"  Dashboard   {config.api_url}/  (sign in as any user, TRADER and/or ADMIN)",
            f"  API         {config.api_url}{API_PREFIX}",
            f"  WebSocket   {config.ws_url}/?token=<JWT>",
            f"  Internal    {config.internal_url} (management API and PutEvents; SigV4 with "
            f"this run's keys in {credentials_file})",
            f"  TRADER token for {DEFAULT_USER} (12 h; more: order-router token --user ID):",
            token,
            "",
            "Try it:",
            _curl(config.api_url, token),
            "",
            f"Live updates:  order-router watch{_data_dir_option(config.data_dir)}",
            "Ctrl-C stops everything.",
        ]
        runtime = LocalRuntime(
            config,
            credentials,
            simulator_urls={name: r.url for name, r in fleet.simulators.items()},
        )

        def ready() -> None:
            endpoints.write_text(
                json.dumps(
                    {"api": config.api_url, "ws": config.ws_url, "internal": config.internal_url}
                )
            )
            print("\n".join(lines), flush=True)

        asyncio.run(_serve(runtime, ready))
        stats = runtime.bus.stats
        print(
            f"stopped: {stats.delivered} events delivered, {stats.dead_lettered} dead-lettered, "
            f"{stats.spooled} spooled for the next start",
            flush=True,
        )
    except (ServiceStartError, OSError, RuntimeError) as exc:
        raise CliError(str(exc) or repr(exc)) from exc
    finally:
        if fleet is not None:
            fleet.stop()
        watchdog.stop()
        endpoints.unlink(missing_ok=True)
        credentials_file.unlink(missing_ok=True)
        redis_server.stop()
        postgres.stop()
    return 0


def _write_private(path: Path, text: str) -> None:
    # Created 0600 from the start: never readable by others, not even for a moment.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


async def _serve(runtime: Any, ready: Callable[[], None]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.serve(stop, ready)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _prepare_database(postgres: Any) -> tuple[str, list[str]]:
    import psycopg

    from local.runtime import DATABASE
    from shared.adapters.postgres.migrations import apply_migrations

    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = str(postgres.url_for(DATABASE))
    return url, apply_migrations(url)


def _load_market() -> str:
    """Load the day's instrument master from the simulator, as the 08:40 IST schedule does."""
    from shared.domain.errors import DataUnavailableError, MarketDataUnavailableError
    from shared.wiring import get_wiring

    try:
        report = get_wiring().market_refresh.load_instruments()
    except (MarketDataUnavailableError, DataUnavailableError) as exc:
        return f"instrument load failed: {exc}"
    return (
        f"instruments loaded: {report.listed} listed, {report.written} written, "
        f"{report.unchanged} unchanged, {report.bad_rows} bad rows, {report.no_band} without band"
    )


def _seed(redis_url: str, fleet: Fleet, *, seed_data: bool) -> str:
    """Register the brokers (and seed unless ``seed_data`` is false); the banner's line."""
    import redis

    from local import seed
    from local.brokers import register_simulated_brokers, seed_simulated_brokers
    from shared.adapters.postgres.pool import Database, create_pool
    from shared.adapters.redis.connections import RedisConnectionRegistry
    from shared.adapters.redis.profile_cache import RedisProfileCache
    from shared.settings import get_settings

    # A profile older than profile_max_age_s is excluded from routing, so a laptop's day-old
    # profiles are re-seeded; fresher ones keep what the last run learned.
    settings = get_settings()
    database = Database(create_pool(settings))
    try:
        if seed_data:
            keep_for = timedelta(seconds=settings.profile_max_age_s)
            brokers, profiles = seed.seed(database, datetime.now(UTC), keep_for=keep_for)
            profiles += seed_simulated_brokers(
                database, fleet, datetime.now(UTC), keep_for=keep_for
            )
            line = (
                f"  Seeded      {brokers} paper brokers, {profiles} broker profiles "
                "(fresher ones keep what the last run learned)"
            )
        else:
            registered = register_simulated_brokers(database, fleet)
            line = (
                f"  Not seeded  --no-seed: {registered} simulated brokers registered, no "
                "profiles, no paper brokers; instruments and quotes from the Kite simulator, "
                "first orders route on day-one priors"
            )
    finally:
        database.close()
    # Cached profiles and connections of an earlier run would outlive the reseed and the sockets.
    client = redis.Redis.from_url(redis_url)
    try:
        RedisProfileCache(client, ttl_s=settings.profile_cache_ttl_s).clear()
        RedisConnectionRegistry(client).clear()
    finally:
        client.close()
    return line


def _link_local_trader(fleet: Fleet) -> dict[str, str]:
    """Link the local trader's simulated accounts through the real flows: adapter -> status."""
    from local.brokers import BROKER_IDS, link_trader
    from shared.settings import get_settings
    from shared.wiring import Wiring

    wiring = Wiring(get_settings())
    try:
        views = link_trader(wiring.broker_links, fleet, DEFAULT_USER)
    finally:
        wiring.close()
    by_broker = {view.broker_id: view for view in views}
    return {
        adapter: f"{broker_id}, {DEFAULT_USER} {by_broker[broker_id].status.value}"
        for adapter, broker_id in BROKER_IDS.items()
        if broker_id in by_broker
    }


def market_status(enforced: bool, now: datetime) -> str:
    """One line saying whether orders sent at ``now`` pass the market-hours rule, and why not."""
    from shared.domain.models import Exchange
    from shared.domain.risk import check_market_hours, default_calendar

    if not enforced:
        return "WARNING: market hours NOT enforced (--ignore-market-hours): orders route any time"
    closed = check_market_hours(default_calendar(), Exchange.NSE, now)
    if closed is None:
        return "NSE is open now: orders route"
    return (
        f"{closed.message}. Orders are refused (422 RISK_REJECTED, rule MARKET_HOURS) until "
        "the market opens; `order-router run --ignore-market-hours` routes at any hour"
    )


def _data_dir_option(data_dir: Path) -> str:
    default = Path(DEFAULT_DATA_DIR).resolve()
    return "" if data_dir == default else f" --data-dir {data_dir}"


def _curl(api_url: str, token: str) -> str:
    body = json.dumps(EXAMPLE_ORDER, separators=(",", ":"))
    return (
        f"curl -s -X POST {api_url}{ApiPath.SMART_ORDER} "
        f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}'"
    )


# -- token -------------------------------------------------------------------------------------


def _token(secret: str, user: str, groups: tuple[str, ...], ttl_s: int) -> str:
    from local.runtime import AUDIENCE, LOCAL_ISSUER
    from local.tokens import issue_local_token

    return issue_local_token(
        secret, user_id=user, groups=groups, issuer=LOCAL_ISSUER, audience=AUDIENCE, ttl_s=ttl_s
    )


def _secret(data_dir: str) -> str:
    from local.runtime import jwt_secret

    try:
        return jwt_secret(Path(data_dir).resolve(), create=False)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _price(text: str) -> str:
    # Sent as a JSON string: the exact decimal the trader typed, never a binary float.
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a price") from exc
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive price, got {text}")
    return text


def _cmd_token(args: argparse.Namespace) -> int:
    groups = tuple(args.group or ["TRADER"])
    user = args.user or (LOCAL_ADMIN if "ADMIN" in groups else DEFAULT_USER)
    print(_token(_secret(args.data_dir), user, groups, args.ttl))
    return 0


# -- quarantine --------------------------------------------------------------------------------


def _cmd_quarantine(args: argparse.Namespace) -> int:
    """List quarantined execution reports, newest first, from the database (no admin API yet)."""
    import os

    from local.runtime import DATABASE
    from shared.domain.errors import DataUnavailableError
    from shared.settings import Settings
    from shared.wiring import Wiring

    url = (
        args.database_url
        or os.environ.get("ROUTER_DATABASE_URL")
        or f"postgresql://postgres@127.0.0.1:{args.pg_port}/{DATABASE}"
    )
    wiring = Wiring(Settings(database_url=url, db_connect_timeout_s=3.0))
    try:
        held = wiring.webhooks.quarantined(limit=args.limit, reason=args.reason)
    except ValueError as exc:
        raise CliError(str(exc), status=2) from exc
    except DataUnavailableError as exc:
        raise CliError(
            f"the database did not answer ({exc}); is `order-router run` running?"
        ) from exc
    finally:
        wiring.database.close()
    rows = [
        {
            "id": h.id,
            "quarantinedAt": h.quarantined_at.isoformat(),
            "stage": h.stage,
            "reason": h.reason,
            "field": h.field,
            "message": h.message,
            "reportKey": h.report_key,
            "brokerId": h.broker_id,
            "childOrderId": h.child_order_id,
            "orderId": h.order_id,
            "report": h.report,
        }
        for h in held
    ]
    print(json.dumps(rows, indent=2))
    return 0


# -- API clients -------------------------------------------------------------------------------


def _endpoints(args: argparse.Namespace, *, need: str) -> str:
    """The URL of ``need`` (``api`` or ``ws``): the explicit option, else the running run's."""
    explicit: str | None = getattr(args, need)
    if explicit:
        return explicit.rstrip("/")
    path = Path(args.data_dir).resolve() / ENDPOINTS_FILE
    recorded: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(path.read_text())
    url = recorded.get(need) if isinstance(recorded, dict) else None
    if not url:
        raise CliError(
            f"{path} not found or unreadable: no `order-router run` is running on this data "
            f"directory. Start local mode (`make run`, or `order-router run --data-dir "
            f"{args.data_dir}`), or pass --{need} URL"
        )
    return url.rstrip("/")


def _bearer(args: argparse.Namespace) -> str:
    token: str = args.token or _token(_secret(args.data_dir), args.user, ("TRADER",), 3600)
    return token


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> int:
    import httpx

    api = _endpoints(args, need="api")
    headers = {"Authorization": f"Bearer {_bearer(args)}"}
    try:
        response = httpx.request(method, f"{api}{path}", headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise CliError(f"{api} did not answer ({exc}); is `order-router run` running?") from exc
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    if response.status_code >= 400:
        print(f"HTTP {response.status_code}", file=sys.stderr)
        return 1
    return 0


def _order_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": args.symbol,
        "side": args.side,
        "quantity": args.quantity,
        "orderType": args.order_type,
        "routingObjective": args.objective,
        "product": args.product,
    }
    optional = {
        "limitPrice": args.limit_price,
        "triggerPrice": args.trigger_price,
        "maxBrokers": args.max_brokers,
        "clientOrderId": getattr(args, "client_order_id", None),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _cmd_submit(args: argparse.Namespace) -> int:
    return _request(args, "POST", ApiPath.SMART_ORDER, json=_order_body(args))


def _cmd_analyze(args: argparse.Namespace) -> int:
    return _request(args, "POST", ApiPath.ANALYZE_ORDER, json=_order_body(args))


def _cmd_analytics(args: argparse.Namespace) -> int:
    return _request(args, "GET", ApiPath.EXECUTION_ANALYTICS, params={"days": str(args.days)})


def _cmd_profiles(args: argparse.Namespace) -> int:
    return _request(args, "GET", ApiPath.BROKER_PROFILES, params={"symbol": args.symbol})


def _cmd_order(args: argparse.Namespace) -> int:
    return _request(args, "GET", ApiPath.ORDER.format(orderId=args.order_id))


def _cmd_watch(args: argparse.Namespace) -> int:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    ws = _endpoints(args, need="ws")
    url = f"{ws}/?token={_bearer(args)}"
    received = 0
    try:
        with connect(url, open_timeout=10) as socket:
            print(f"connected to {ws} as {args.user}", file=sys.stderr, flush=True)
            if args.order_id or args.symbol:
                filters = {"orderIds": args.order_id or [], "symbols": args.symbol or []}
                socket.send(json.dumps({"action": "subscribe", **filters}))
            for message in _messages(socket, args.timeout):
                print(message, flush=True)
                if _is_reply(message):
                    continue  # the answer to our own subscribe, not an update
                received += 1
                if args.count and received >= args.count:
                    break
    except InvalidStatus as exc:
        raise CliError(f"connection refused: HTTP {exc.response.status_code}") from exc
    except (OSError, ConnectionClosed) as exc:
        raise CliError(f"{ws}: {exc}") from exc
    except KeyboardInterrupt:
        pass
    return 0


def _is_reply(message: str) -> bool:
    try:
        decoded = json.loads(message)
    except ValueError:
        return False
    return isinstance(decoded, dict) and decoded.get("type") in REPLY_MESSAGES


def _messages(socket: Any, timeout_s: float | None) -> Iterator[str]:
    import time

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        try:
            message = socket.recv(timeout=remaining)
        except TimeoutError:
            return
        yield message if isinstance(message, str) else message.decode()


# -- parser ------------------------------------------------------------------------------------


def _cmd_kill_switch(args: argparse.Namespace) -> int:
    """Write a kill-switch change to the running service's Postgres (no API has it yet)."""
    import getpass

    from local.runtime import DATABASE
    from shared.adapters.postgres.pool import Database, create_pool
    from shared.adapters.postgres.risk import PostgresRiskState
    from shared.domain.errors import DataUnavailableError
    from shared.domain.risk import GLOBAL_SCOPE
    from shared.settings import Settings

    if not args.reason.strip():
        raise CliError("--reason must say why", status=2)
    settings = Settings(
        stage="local",
        database_url=f"postgresql://postgres@127.0.0.1:{args.pg_port}/{DATABASE}",
        db_pool_min=0,
        db_pool_max=1,
    )
    database = Database(create_pool(settings))
    try:
        switch = PostgresRiskState(database).set(
            args.user or GLOBAL_SCOPE,
            engaged=args.action == "engage",
            reason=args.reason.strip(),
            actor=f"cli:{getpass.getuser()}",
        )
    except DataUnavailableError as exc:
        raise CliError(
            f"Postgres on port {args.pg_port} does not answer: is `order-router run` running?"
        ) from exc
    finally:
        database.close()
    state = "ENGAGED" if switch.engaged else "released"
    whose = "global" if switch.scope == GLOBAL_SCOPE else f"trader {switch.scope}"
    print(f"kill switch ({whose}) {state} at {switch.changed_at.isoformat()}: {switch.reason}")
    return 0


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where `run` keeps its data")
    parser.add_argument("--api", help="API base URL (default: the running `order-router run`)")
    parser.add_argument("--ws", help="WebSocket URL (default: the running `order-router run`)")
    parser.add_argument("--user", default=DEFAULT_USER, help="trader id for a minted token")
    parser.add_argument("--token", help="a JWT to use instead of minting one")


def _order_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", default="RELIANCE")
    parser.add_argument("--side", default="BUY", choices=["BUY", "SELL"])
    parser.add_argument("--quantity", type=_positive_int, default=100)
    # Choices from the enums the API validates with: the CLI offers exactly what it accepts.
    parser.add_argument(
        "--order-type", default=OrderType.MARKET.value, choices=[t.value for t in OrderType]
    )
    parser.add_argument(
        "--objective",
        default=RoutingObjective.SMART_BALANCE.value,
        choices=[o.value for o in RoutingObjective],
        help="routing objective",
    )
    parser.add_argument(
        "--product",
        default=Product.CNC.value,
        choices=[p.value for p in Product],
        help="CNC (delivery) or MIS (intraday)",
    )
    parser.add_argument(
        "--limit-price", type=_price, help="limit price (LIMIT and STOP_LOSS orders)"
    )
    parser.add_argument(
        "--trigger-price",
        type=_price,
        help="trigger price (STOP_LOSS and STOP_LOSS_MARKET orders)",
    )
    parser.add_argument("--max-brokers", type=_positive_int)


def _add_quarantine_parser(sub: Any) -> None:
    quarantine = sub.add_parser(
        "quarantine", help="list quarantined execution reports (newest first) with their reasons"
    )
    quarantine.add_argument("--limit", type=int, default=50, help="at most this many (1-1000)")
    quarantine.add_argument("--reason", help="only this reason, e.g. OVERFILL, PRICE_OUT_OF_BAND")
    quarantine.add_argument(
        "--database-url",
        help="Postgres URL (default: $ROUTER_DATABASE_URL, else the local run's database)",
    )
    quarantine.add_argument("--pg-port", type=int, default=DEFAULT_PG_PORT)
    quarantine.set_defaults(handler=_cmd_quarantine)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="order-router", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    _run_parser(sub)

    token = sub.add_parser("token", help="print a dev JWT from the local issuer")
    token.add_argument(
        "--user", help=f"subject; default {DEFAULT_USER}, or {LOCAL_ADMIN} with --group ADMIN"
    )
    token.add_argument("--group", action="append", help="repeatable: TRADER (default), ADMIN")
    token.add_argument(
        "--ttl", type=_positive_int, default=TOKEN_TTL_S, help="lifetime in seconds (> 0)"
    )
    token.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    token.set_defaults(handler=_cmd_token)

    submit = sub.add_parser("submit", help="POST /orders/smart: route and execute an order")
    _client_options(submit)
    _order_options(submit)
    submit.add_argument("--client-order-id")
    submit.set_defaults(handler=_cmd_submit)

    analyze = sub.add_parser("analyze", help="POST /orders/analyze: the decision, no orders")
    _client_options(analyze)
    _order_options(analyze)
    analyze.set_defaults(handler=_cmd_analyze)

    analytics = sub.add_parser("analytics", help="GET /analytics/execution")
    _client_options(analytics)
    analytics.add_argument("--days", type=int, default=30)
    analytics.set_defaults(handler=_cmd_analytics)

    profiles = sub.add_parser("profiles", help="GET /brokers/profiles for a symbol")
    _client_options(profiles)
    profiles.add_argument("--symbol", default="RELIANCE")
    profiles.set_defaults(handler=_cmd_profiles)

    order = sub.add_parser("order", help="GET /orders/{id}: decision, children, executions")
    _client_options(order)
    order.add_argument("order_id")
    order.set_defaults(handler=_cmd_order)

    watch = sub.add_parser("watch", help="print the WebSocket messages of a trader")
    _client_options(watch)
    watch.add_argument("--order-id", action="append", help="only these orders (repeatable)")
    watch.add_argument("--symbol", action="append", help="only these symbols (repeatable)")
    watch.add_argument(
        "--count",
        type=_positive_int,
        help="stop after this many pushed updates (replies to our subscribe do not count)",
    )
    watch.add_argument("--timeout", type=float, help="stop after this many seconds")
    watch.set_defaults(handler=_cmd_watch)
    _add_quarantine_parser(sub)
    _kill_switch_parser(sub)
    _refresh_market_parser(sub)
    return parser


def _run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="start the whole service on this machine")
    run.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    run.add_argument("--ws-port", type=int, default=DEFAULT_WS_PORT)
    run.add_argument(
        "--internal-port",
        type=int,
        default=DEFAULT_INTERNAL_PORT,
        help="management API and PutEvents (127.0.0.1, signed with this run's keys)",
    )
    run.add_argument("--pg-port", type=int, default=DEFAULT_PG_PORT)
    run.add_argument("--redis-port", type=int, default=DEFAULT_REDIS_PORT)
    run.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="kept between runs")
    run.add_argument("--relay-interval", type=float, default=5.0, help="outbox relay period (s)")
    run.add_argument("--reconcile-interval", type=float, default=10.0, help="reconciler period (s)")
    run.add_argument(
        "--reconcile-after",
        type=float,
        default=Settings.model_fields["reconcile_after_s"].default,
        help="finish an order still unanswered after this many seconds (ROUTER_RECONCILE_AFTER_S)",
    )
    run.add_argument("--verbose", action="store_true", help="handler logs and metrics too")
    run.add_argument(
        "--market-interval",
        type=float,
        default=60.0,
        help="market-statistics refresh period (s)",
    )
    run.add_argument(
        "--ignore-market-hours",
        action="store_true",
        help="route outside NSE/BSE market hours too (local mode only; docs/risk.md)",
    )
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="containers per function (route_order, broker_webhook, track_execution): N worker "
        "processes, each one invocation at a time as a Lambda container (docs/capacity.md)",
    )
    run.add_argument(
        "--no-seed",
        action="store_true",
        help="seed no paper brokers, profiles or instruments: only the simulated brokers are "
        "registered, instruments and quotes come from the simulators and the first orders route "
        "on day-one priors (docs/local-mode.md)",
    )
    run.set_defaults(handler=_run)


def _kill_switch_parser(sub: Any) -> None:
    kill = sub.add_parser(
        "kill-switch", help="engage or release a kill switch (global, or one trader's)"
    )
    kill.add_argument("action", choices=["engage", "release"])
    kill.add_argument("--user", help="the trader's id; without it, the global switch")
    kill.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    kill.add_argument("--pg-port", type=int, default=DEFAULT_PG_PORT, help="the run's Postgres")
    kill.set_defaults(handler=_cmd_kill_switch)


def _refresh_market_parser(sub: Any) -> None:
    refresh = sub.add_parser(
        "refresh-market",
        help="load the instrument master and/or refresh market statistics of a running `run`",
    )
    refresh.add_argument("--job", choices=["instruments", "statistics", "all"], default="all")
    refresh.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="the running `run`'s")
    refresh.add_argument("--pg-port", type=int, default=DEFAULT_PG_PORT, help="the run's Postgres")
    refresh.add_argument("--redis-port", type=int, default=DEFAULT_REDIS_PORT)
    refresh.set_defaults(handler=_cmd_refresh_market)


def _running_market(data_dir: Path) -> dict[str, str]:
    """The market-data simulator of the `run` using ``data_dir`` (from its credentials file)."""
    path = data_dir / CREDENTIALS_FILE
    try:
        feed = json.loads(path.read_text())["marketData"]
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"no running `order-router run` found in {data_dir} ({path})") from exc
    return {key: str(feed[key]) for key in ("url", "apiKey", "token")}


def _cmd_refresh_market(args: argparse.Namespace) -> int:
    """Run the market-data jobs against a running local mode's stores and simulator."""
    from local.runtime import DATABASE, HOST, MARKET_TOKEN_REF
    from shared.domain.errors import DataUnavailableError, MarketDataUnavailableError
    from shared.settings import Settings
    from shared.wiring import Wiring

    feed = _running_market(Path(args.data_dir))
    settings = Settings(
        stage="local",
        database_url=f"postgresql://postgres@{HOST}:{args.pg_port}/{DATABASE}",
        redis_url=f"redis://{HOST}:{args.redis_port}/0",
        db_pool_min=0,
        db_pool_max=1,
        market_data_source="kite",
        market_data_base_url=feed["url"],
        market_data_api_key=feed["apiKey"],
        broker_secrets_json=json.dumps({MARKET_TOKEN_REF: feed["token"]}),
    )
    wiring = Wiring(settings)
    results: dict[str, Any] = {}
    try:
        if args.job in ("instruments", "all"):
            results["instruments"] = wiring.market_refresh.load_instruments().as_dict()
        if args.job in ("statistics", "all"):
            results["statistics"] = wiring.market_refresh.refresh_statistics().as_dict()
    except DataUnavailableError as exc:
        raise CliError(
            f"Postgres on port {args.pg_port} does not answer: is `order-router run` running?"
        ) from exc
    except MarketDataUnavailableError as exc:
        raise CliError(f"market data unavailable: {exc}") from exc
    finally:
        wiring.close()
    print(json.dumps(results, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``order-router`` console script.

    Parameters
    ----------
    argv
        Arguments without the program name (``sys.argv[1:]`` when omitted).

    Returns
    -------
    int
        The exit status: 0 on success, 1 on a failure, 2 on a usage error such as a busy port.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status


if __name__ == "__main__":
    sys.exit(main())
