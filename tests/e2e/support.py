"""Helpers of the tests in tests/e2e/ (importable: tests never import a conftest module)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from local.runtime import AUDIENCE, LOCAL_ISSUER, jwt_secret
from local.services import free_port
from local.tokens import issue_local_token
from shared.domain.contracts import TRADER_PREFIX, ApiPath

REPO = Path(__file__).resolve().parents[2]

API = TRADER_PREFIX

START_TIMEOUT_S = 90

STOP_TIMEOUT_S = 30

# Every paper broker fills part of each child and cancels the rest, and none rejects: the tests
# then know each child's outcome (a full-fill webhook can still move it forward) while the
# fills still come from the paper brokers through the event bus.
PAPER_BEHAVIOUR = {"rejectRate": 0.0, "timeoutRate": 0.0, "partialFillRate": 1.0}


@dataclass
class Runtime:
    """A running ``order-router run`` and what a client needs to talk to it."""

    api: str
    ws: str
    internal: str
    data_dir: Path
    pg_port: int
    redis_port: int
    process: subprocess.Popen[bytes]
    log: Path

    def token(self, user: str, groups: tuple[str, ...] = ("TRADER",)) -> str:
        """A token from the run's local issuer (the secret ``run`` stored)."""
        return issue_local_token(
            jwt_secret(self.data_dir, create=False),
            user_id=user,
            groups=groups,
            issuer=LOCAL_ISSUER,
            audience=AUDIENCE,
        )

    def auth(self, user: str) -> dict[str, str]:
        """``Authorization`` header of a trader."""
        return {"Authorization": f"Bearer {self.token(user)}"}

    def connections_of(self, user: str) -> list[str]:
        """Connection ids the WebSocket registry in Redis holds for ``user``."""
        client = redis.Redis(host="127.0.0.1", port=self.redis_port, decode_responses=True)
        try:
            return sorted(str(m) for m in client.smembers(f"ws:user:{user}"))
        finally:
            client.close()

    def internal_credentials(self) -> dict[str, str]:
        """The run's key pair for the internal server (``internal-credentials.json``)."""
        credentials: dict[str, str] = json.loads(
            (self.data_dir / "internal-credentials.json").read_text()
        )
        return credentials

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``order-router <args>`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        cwd=REPO,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _environment() -> dict[str, str]:
    # The developer's ROUTER_*/AWS_* variables must not leak into the runtime under test.
    return {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "AWS_"))}


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def start_runtime(data_dir: Path, *options: str) -> Runtime:
    """Start ``order-router run`` on free ports with ``data_dir`` and wait until it is healthy.

    ``options`` are more ``run`` options (e.g. ``--reconcile-after=2``).
    """
    http_port, ws_port, internal_port, pg_port, redis_port = _distinct_free_ports(5)
    log = data_dir.parent / f"{data_dir.name}-{http_port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.cli",
                "run",
                f"--http-port={http_port}",
                f"--ws-port={ws_port}",
                f"--internal-port={internal_port}",
                f"--pg-port={pg_port}",
                f"--redis-port={redis_port}",
                f"--data-dir={data_dir}",
                "--relay-interval=1",
                # The suite runs at any hour; the hours rule is tested in tests/handlers.
                "--ignore-market-hours",
                *options,
            ],
            cwd=REPO,
            env=_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    run = Runtime(
        api=f"http://127.0.0.1:{http_port}",
        ws=f"ws://127.0.0.1:{ws_port}",
        internal=f"http://127.0.0.1:{internal_port}",
        data_dir=data_dir,
        pg_port=pg_port,
        redis_port=redis_port,
        process=process,
        log=log,
    )
    _wait_until_healthy(run)
    return run


def _wait_until_healthy(run: Runtime) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            pytest.fail(f"order-router run exited with {run.process.returncode}:\n{run.output()}")
        try:
            if httpx.get(f"{run.api}{ApiPath.HEALTH}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    run.process.kill()
    pytest.fail(f"order-router run not healthy within {START_TIMEOUT_S} s:\n{run.output()}")


def stop_runtime(run: Runtime) -> None:
    """Stop with SIGINT (Ctrl-C); fail unless the process exits 0 within the time allowed."""
    if run.process.poll() is None:
        run.process.send_signal(signal.SIGINT)
        try:
            run.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()
            pytest.fail(f"order-router run ignored SIGINT for {STOP_TIMEOUT_S} s:\n{run.output()}")
    if run.process.returncode != 0:
        pytest.fail(f"order-router run exited with {run.process.returncode}:\n{run.output()}")
