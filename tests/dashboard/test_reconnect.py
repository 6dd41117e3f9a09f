"""The dashboard's WebSocket after a restart of local mode: backoff, reconnect, status again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.dashboard.support import Watched, open_page, sign_in, start_runtime_on
from tests.e2e.support import Runtime, stop_runtime


@pytest.fixture
def data_dir(built: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard-restart")


def asked_status(page: Page, sent: list[list[str]], socket: int) -> bool:
    """Whether socket ``socket`` sent ``{"action": "status"}``, waiting up to 5 s for it.

    Frame events reach Python asynchronously; waiting on the page lets them arrive.
    """
    for _ in range(50):
        if {"action": "status"} in [json.loads(f) for f in sent[socket]]:
            return True
        page.wait_for_timeout(100)
    return False


def test_the_socket_comes_back_after_a_restart(browser: Browser, data_dir: Path) -> None:
    # GIVEN a trader on the ticket with a live socket, recording what each socket sends
    first, ports = start_runtime_on(data_dir)
    runs: list[Runtime] = [first]
    sent: list[list[str]] = []

    def on_socket(socket: WebSocket) -> None:
        frames: list[str] = []
        sent.append(frames)
        socket.on("framesent", lambda payload: frames.append(str(payload)))

    watched: Watched | None = None
    try:
        watched = open_page(browser, first.api)
        page = watched.page
        page.on("websocket", on_socket)
        sign_in(page, "trader-restart")
        badge = page.get_by_test_id("ws-state")
        expect(badge).to_have_attribute("data-state", "open")
        assert asked_status(page, sent, 0)

        # WHEN local mode stops (Ctrl-C)
        stop_runtime(first)
        # THEN the dashboard says it is reconnecting
        expect(badge).to_have_attribute("data-state", "reconnecting")

        # WHEN it starts again on the same ports and data
        second, _ = start_runtime_on(data_dir, ports)
        runs.append(second)
        # THEN the socket is back (backoff at most 10 s) and asked for the status again
        expect(badge).to_have_attribute("data-state", "open", timeout=20_000)
        assert len(sent) >= 2
        assert asked_status(page, sent, -1)

        # and an order placed now is followed live to its fill over the new socket
        expect(page.get_by_test_id("preview")).to_be_visible()
        page.get_by_role("button", name="Submit BUY").click()
        expect(
            page.get_by_test_id("events").locator('[data-type="EXECUTION_UPDATE"]').first
        ).to_be_visible()
        expect(page.get_by_test_id("order-complete")).to_be_visible()
        # Only the refused reconnection attempts while the server was down are logged.
        watched.assert_clean(allow_websocket_refused=True)
    finally:
        if watched is not None:
            watched.page.context.close()
        stop_runtime(runs[-1])
