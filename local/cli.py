"""``order-router``: the local-mode command line (``make run`` calls ``order-router run``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from local.services import EmbeddedPostgres, EmbeddedRedis, ServiceStartError, port_is_free
from shared.adapters.postgres.migrations import apply_migrations

DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799


def _run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    for port, what in ((args.pg_port, "PostgreSQL"), (args.redis_port, "Redis")):
        if not port_is_free(port):
            print(f"error: port {port} for {what} is busy; free it or choose another port")
            return 2
    postgres = EmbeddedPostgres(data_dir / "postgres", port=args.pg_port, durable=True)
    redis_server = EmbeddedRedis(port=args.redis_port, data_dir=data_dir / "redis")
    try:
        postgres.start()
        redis_server.start()
        database_url = postgres.url_for("postgres")
        applied = apply_migrations(database_url)
        print(f"PostgreSQL  {database_url}  (migrations applied now: {applied or 'none'})")
        print(f"Redis       {redis_server.url}")
        print("Not there yet: the local HTTP API, WebSocket server and paper brokers (issue #8).")
        print("Press Ctrl-C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    except ServiceStartError as exc:
        print(f"error: {exc}")
        return 1
    finally:
        redis_server.stop()
        postgres.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="order-router", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the service locally")
    run.add_argument("--data-dir", default=".local")
    run.add_argument("--pg-port", type=int, default=DEFAULT_PG_PORT)
    run.add_argument("--redis-port", type=int, default=DEFAULT_REDIS_PORT)
    run.set_defaults(handler=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``order-router`` console script."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
