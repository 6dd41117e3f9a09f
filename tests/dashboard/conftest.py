"""Fixtures of the dashboard's browser tests: the built dashboard, a runtime, Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.dashboard.support import (
    Watched,
    chromium_path,
    ensure_built,
    open_page,
    start_runtime_on,
)
from tests.e2e.support import Runtime, stop_runtime


@pytest.fixture(scope="session")
def built() -> None:
    """``web/dist`` exists (built from the locked install when missing)."""
    ensure_built()


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# until it stops, and the async tests collected after this package need the thread free.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium (``--no-sandbox``: CI runs as root)."""
    chromium = playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
    )
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def runtime(built: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """``order-router run`` serving the dashboard, for the tests of one module."""
    run, _ = start_runtime_on(tmp_path_factory.mktemp("dashboard-run"))
    try:
        yield run
    finally:
        stop_runtime(run)


@pytest.fixture
def watched(browser: Browser, runtime: Runtime) -> Iterator[Watched]:
    """A fresh page on the runtime's dashboard."""
    page = open_page(browser, runtime.api)
    yield page
    page.page.context.close()
