"""Browser tests of the web UI: Playwright driving Debian's Chromium against a real `callvault serve`.

One server per catalog backend and one browser per test module (a browser costs
about a second to start; a server with its staff a few). Each test opens its own
browser context, i.e. its own cookies: signing in as one user never leaks into
the next test. Screenshots land in ``test-artifacts/web/`` (or
``$CALLVAULT_TEST_ARTIFACTS/web``); when a test fails the server's log is printed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import _postgres_admin, _postgres_database_url
from tests.support.people import password_of
from tests.support.reports import test_failed
from tests.support.web_server import WebServer, serving, web_settings

CHROMIUM = os.environ.get("CALLVAULT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("CALLVAULT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
SERIOUS = ("serious", "critical")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "web_db" in metafunc.fixturenames:
        backends = [b.strip() for b in metafunc.config.getoption("--db").split(",") if b.strip()]
        metafunc.parametrize("web_db", backends, scope="module")


@pytest.fixture(scope="module")
def web_database_url(
    web_db: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    data_dir = tmp_path_factory.mktemp("web") / "data"
    if web_db == "sqlite":
        data_dir.mkdir(parents=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), data_dir / "catalog.sqlite3")
        yield data_dir, ""
        return
    template = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    _postgres_admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield data_dir, _postgres_database_url(name)
    finally:
        _postgres_admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def web(web_database_url: tuple[Path, str]) -> Iterator[WebServer]:
    data_dir, url = web_database_url
    with serving(web_settings(data_dir, url)) as server:
        yield server


@pytest.fixture(autouse=True)
def _server_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "web" in request.fixturenames and test_failed(request):
        request.getfixturevalue("web").print_log()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (./scripts/test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, web: WebServer) -> Iterator[BrowserContext]:
    made = browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 900})
    made.set_default_timeout(20_000)
    yield made
    made.close()


def sign_in(context: BrowserContext, username: str, password: str | None = None) -> Page:
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password if password is not None else password_of(username))
    page.click("button[type=submit]")
    return page


def screenshot(page: Page, name: str) -> None:
    folder = ARTIFACTS / "web"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def assert_accessible(page: Page) -> None:
    """axe-core (bundled with axe-playwright-python, injected from disk): no serious violations."""
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert not serious, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in serious
    )
