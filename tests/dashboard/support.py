"""Helpers of the dashboard's browser tests (importable: tests never import a conftest module).

The browser is Debian's Chromium (``/usr/bin/chromium``, or ``$CHROMIUM``) driven by Playwright
over CDP; Playwright's own browser downloads are never used. The dashboard is the build in
``web/dist`` (``make web``); the runtime is the real ``order-router run``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

from local.dashboard import DIST
from local.runtime import DATABASE
from tests.e2e.support import REPO, Runtime, _distinct_free_ports, _environment, _wait_until_healthy

# Every paper broker fills each child in full and none rejects or times out: the order's
# outcome is known, the fills still come from the paper brokers through the event bus.
FULL_FILLS = {"rejectRate": 0.0, "timeoutRate": 0.0, "partialFillRate": 0.0}

# Routes other helpers are building (docs/dashboard.md): until they land, the API answers 404
# and the dashboard shows "not available". The browser logs each such 404 as a console error
# ("Failed to load resource"); those, and only those, are not failures.
PENDING_ROUTES = re.compile(r"/api/v1/(trading/intelligent/orders\?|admin/)")
RESOURCE_404 = "Failed to load resource: the server responded with a status of 404"
WEBSOCKET_REFUSED = re.compile(r"WebSocket connection to 'ws://127\.0\.0\.1:\d+/\?token=.*' failed")


def chromium_path() -> str:
    """The system Chromium; a clear failure naming the package when it is missing."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail(
            "Chromium is missing: `make browser` (apt-get install chromium chromium-driver)"
        )
    return path


def ensure_built() -> Path:
    """``web/dist``, built with the locked install when a plain ``pytest`` finds it missing."""
    if not (DIST / "index.html").is_file():
        subprocess.run(["make", "web"], cwd=REPO, check=True)
    return DIST


def start_runtime_on(data_dir: Path, ports: list[int] | None = None) -> tuple[Runtime, list[int]]:
    """``order-router run`` on ``ports`` (fresh free ones when ``None``), full fills, any hour."""
    http_port, ws_port, internal_port, pg_port, redis_port = ports or _distinct_free_ports(5)
    log = data_dir.parent / f"{data_dir.name}-{http_port}-{os.urandom(3).hex()}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "local.cli", "run",
                f"--http-port={http_port}", f"--ws-port={ws_port}",
                f"--internal-port={internal_port}", f"--pg-port={pg_port}",
                f"--redis-port={redis_port}", f"--data-dir={data_dir}",
                "--relay-interval=1", "--ignore-market-hours",
            ],
            cwd=REPO, env=_environment(), stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
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
    sql(
        run,
        "UPDATE brokers SET adapter_config = adapter_config || %s::jsonb",
        json.dumps(FULL_FILLS),
    )
    return run, [http_port, ws_port, internal_port, pg_port, redis_port]


def sql(run: Runtime, statement: str, *params: Any) -> None:
    """Run one statement in the run's Postgres."""
    url = f"postgresql://postgres@127.0.0.1:{run.pg_port}/{DATABASE}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


@dataclass
class Watched:
    """A page with what its console said and which responses were 404s."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(
        self, *, allow_websocket_refused: bool = False, allow_statuses: tuple[int, ...] = ()
    ) -> None:
        """No page error and no console error, except the expected 404s and what a test allows.

        ``allow_statuses``: answers a test provoked (the browser logs each as a failed
        resource); ``allow_websocket_refused``: sockets refused while the server was down.
        """
        assert self.page_errors == [], self.page_errors
        unexpected_404 = [url for url in self.not_found if not PENDING_ROUTES.search(url)]
        assert unexpected_404 == [], unexpected_404
        provoked = tuple(f"status of {status} " for status in allow_statuses)
        errors = [
            text
            for text in self.console_errors
            if not text.startswith(RESOURCE_404)
            and not (
                provoked
                and text.startswith("Failed to load resource")
                and any(p in text for p in provoked)
            )
            and not (allow_websocket_refused and WEBSOCKET_REFUSED.search(text))
        ]
        assert errors == [], errors


def open_page(browser: Browser, base_url: str) -> Watched:
    """A fresh context (own storage) and page that records console errors and 404s."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Assertions wait as long as actions: on a busy 2-core machine a first preview (cold imports
    # in local mode, Chart.js drawing) can take longer than Playwright's 5 s default.
    expect.set_options(timeout=15_000)
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    def on_response(response: Response) -> None:
        watched.requests.append(response.url)
        if response.status == 404:
            watched.not_found.append(response.url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.page_errors.append(str(exc)))
    page.on("response", on_response)
    return watched


def sign_in(page: Page, user: str, groups: tuple[str, ...] = ("TRADER",)) -> None:
    """Sign in through the local sign-in form, with the keyboard only."""
    page.goto("/")
    page.get_by_label("User id").fill(user)
    for group in ("TRADER", "ADMIN"):
        box = page.get_by_label(group, exact=True)
        if (group in groups) != box.is_checked():
            box.focus()
            page.keyboard.press("Space")
    page.get_by_label("User id").press("Enter")
    page.get_by_test_id("who").wait_for()


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot to ``$DASHBOARD_SCREENSHOTS`` (``make screenshots``)."""
    folder = os.environ.get("DASHBOARD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def canvas_has_drawing(page: Page, testid: str) -> bool:
    """Whether the chart's canvas has painted pixels (Chart.js drew something)."""
    script = """(id) => {
        const c = document.querySelector(`[data-testid="${id}"]`);
        if (!c || !c.width || !c.height) return false;
        const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
        return painted > 500;
    }"""
    return bool(page.evaluate(script, testid))
