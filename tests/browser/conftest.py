"""A real ASGI server (daphne, forked so it uses the test database) and Debian's Chromium driven by Playwright."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from channels.testing.live import make_application
from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from mcpservers.services import mcp_enable
from roles.demo import demo_build_sqlite
from roles.demo.platform import demo_sales_analyst_permissions
from roles.models import Engine, Role, Service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def browser_demo_path(tmp_path_factory):
    return str(demo_build_sqlite(path=tmp_path_factory.mktemp("browser-demo") / "demo.sqlite3", scale=0.02))


@pytest.fixture
def live_server_url(transactional_db, settings):
    """daphne serving Nectar's ASGI application (HTTP, WebSocket, static files) on a free port."""
    server = DaphneProcess("127.0.0.1", partial(make_application, static_wrapper=ASGIStaticFilesHandler))
    server.daemon = True
    server.start()
    while not server.ready.wait(timeout=1):
        if not server.is_alive():
            raise RuntimeError(f"daphne stopped: {server.errors.get_nowait() if not server.errors.empty() else ''}")
    yield f"http://127.0.0.1:{server.port.value}"
    server.terminate()
    server.join(timeout=10)


@pytest.fixture
def browser(live_server_url, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on the test's thread, while the test's own ORM calls are
    # synchronous. Set after daphne has forked, so the server keeps Django's check.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def analyst_role(org, owner, browser_demo_path):
    service = Service.objects.create(
        organization=org, name="Demo shop", engine=Engine.SQLITE, database=browser_demo_path
    )
    role = Role.objects.create(
        organization=org,
        service=service,
        name="Sales analyst",
        permissions=demo_sales_analyst_permissions(schema="main", routines=False),
        created_by=owner,
        mcp_enabled=True,
    )
    mcp_enable(role=role)
    role.refresh_from_db()
    return role


def sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 390, "height": 844}


def page_fits(page) -> None:
    """Nothing on the page (the navigation included) is wider than the window."""
    widths = page.evaluate(
        "() => { const nav = document.querySelector('nav.mainnav'); const d = document.documentElement;"
        " return {page: d.scrollWidth, window: d.clientWidth,"
        " nav: nav ? nav.scrollWidth : 0, navBox: nav ? nav.clientWidth : 0}; }"
    )
    assert widths["page"] <= widths["window"], widths
    assert widths["nav"] <= widths["navBox"], widths


def shoot(page, screenshots: Path, name: str) -> None:
    """A full-page screenshot at desktop width, then at mobile width (where the page must fit)."""
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(screenshots / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(MOBILE)
    page.wait_for_timeout(100)
    page_fits(page)
    page.screenshot(path=str(screenshots / f"{name}-mobile.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
