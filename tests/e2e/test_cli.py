"""The command line against a running local mode: what it offers, refuses and counts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.domain.contracts import MessageType
from shared.domain.models import OrderType
from tests.e2e.support import API, REPO, Runtime, _environment, cli


def one_error_line(outcome: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    return lines[-1]


def test_order_types_offered_are_exactly_the_apis() -> None:
    # GIVEN the API's order types WHEN the CLI's help and a type the API refuses are tried
    help_text = cli("submit", "--help").stdout
    refused = cli("submit", "--order-type", "SL")
    # THEN the help offers the API's values and nothing else is accepted
    for order_type in OrderType:
        assert order_type.value in help_text
    assert "SL-M" not in help_text
    assert refused.returncode == 2
    assert "invalid choice: 'SL'" in one_error_line(refused)


def test_a_stop_loss_order_with_a_trigger_price_reaches_the_api(runtime: Runtime) -> None:
    # GIVEN a stop-loss limit order (limit and trigger price) WHEN analyzed through the CLI
    outcome = cli(
        "analyze",
        f"--data-dir={runtime.data_dir}",
        "--order-type=STOP_LOSS",
        "--limit-price=1300.00",
        "--trigger-price=1298.50",
    )
    # THEN the API accepted it and answered a decision
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert json.loads(outcome.stdout)["allocations"]


def test_a_price_that_is_not_a_positive_number_is_a_usage_error() -> None:
    # GIVEN prices that are no prices WHEN given THEN each is refused in one line, no traceback
    for price in ("abc", "-5", "0", "nan"):
        outcome = cli("analyze", "--order-type=LIMIT", f"--limit-price={price}")
        assert outcome.returncode == 2, price
        assert "--limit-price" in one_error_line(outcome)


def test_token_ttl_must_be_positive(runtime: Runtime) -> None:
    # GIVEN a TTL of 0 and one that is no number WHEN a token is asked for
    for ttl in ("0", "-3", "soon"):
        outcome = cli("token", "--user", "u", "--ttl", ttl, f"--data-dir={runtime.data_dir}")
        # THEN a clear usage error, not a traceback
        assert outcome.returncode == 2, ttl
        assert "--ttl" in one_error_line(outcome)


def test_clients_without_a_running_local_mode_say_so(tmp_path: Path) -> None:
    # GIVEN a data directory no run uses WHEN a client is started on it
    outcome = cli("analyze", f"--data-dir={tmp_path}", "--token=x")
    # THEN it fails naming the endpoints file and how to start local mode (no silent :8080)
    line = one_error_line(outcome)
    assert outcome.returncode == 1
    assert str(tmp_path / "endpoints.json") in line
    assert "order-router run" in line
    assert "--api" in line


def test_an_explicit_api_url_needs_no_endpoints_file(runtime: Runtime, tmp_path: Path) -> None:
    # GIVEN a data directory without endpoints but an explicit --api URL and a token
    token = runtime.token("trader-cli-explicit")
    # WHEN the client runs
    outcome = cli("profiles", f"--data-dir={tmp_path}", f"--api={runtime.api}", f"--token={token}")
    # THEN it talks to that URL
    assert outcome.returncode == 0, outcome.stderr
    assert json.loads(outcome.stdout)


def test_watch_count_counts_pushed_updates_not_its_subscribed_reply(runtime: Runtime) -> None:
    # GIVEN `watch --count 1` subscribed to a symbol (the server answers SUBSCRIBED first)
    trader = "trader-cli-watch"
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.cli",
            "watch",
            f"--data-dir={runtime.data_dir}",
            f"--user={trader}",
            "--symbol=TCS",
            "--count=1",
            "--timeout=30",
        ],
        cwd=REPO,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not runtime.connections_of(trader) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the subscribe message and its reply
        # WHEN an order of that trader for that symbol is routed
        response = httpx.post(
            f"{runtime.api}{API}/orders/smart",
            json={"symbol": "TCS", "side": "BUY", "quantity": 5, "orderType": "MARKET"},
            headers=runtime.auth(trader),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        stdout, stderr = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    # THEN it printed the reply and then exactly one pushed update, and stopped by itself
    assert watch.returncode == 0, stderr
    types = [json.loads(line)["type"] for line in stdout.strip().splitlines()]
    assert types[0] == MessageType.SUBSCRIBED
    assert len(types) == 2
    assert types[1] != MessageType.SUBSCRIBED


def test_refresh_market_loads_the_master_and_refreshes_statistics_from_the_simulator(
    runtime: Runtime,
) -> None:
    # GIVEN a running local mode, whose start already loaded today's instruments
    ports = (
        f"--data-dir={runtime.data_dir}",
        f"--pg-port={runtime.pg_port}",
        f"--redis-port={runtime.redis_port}",
    )
    # WHEN both market jobs are run from the command line
    outcome = cli("refresh-market", *ports)
    # THEN the load changed nothing (idempotent) and every routed symbol was refreshed
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    report = json.loads(outcome.stdout)
    assert report["instruments"]["written"] == 0
    assert report["instruments"]["unchanged"] == report["instruments"]["listed"] > 0
    statistics = report["statistics"]
    assert statistics["refreshed"] == statistics["symbols"] > 0


def test_refresh_market_without_a_running_local_mode_says_so(tmp_path: Path) -> None:
    # GIVEN a data dir no run uses WHEN the load is asked for
    outcome = cli("refresh-market", "--job=instruments", f"--data-dir={tmp_path}")
    # THEN one error line says no run was found, no traceback
    assert outcome.returncode == 1
    assert "no running `order-router run` found" in one_error_line(outcome)
