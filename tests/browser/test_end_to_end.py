"""The whole story in Chromium: sign in, ask for an API, watch the agents live, approve, deploy, try it, see rows."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from agents.models import AgentExecution, AgentStatus
from endpoints.models import EndpointStatus
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PIPELINE_TIMEOUT_MS = 240_000


def _run_worker(execution_id: str, outcome: dict) -> None:
    """What the django-q worker does with the queued task."""
    from agents.tasks import run_execution_task

    try:
        outcome["status"] = run_execution_task(execution_id)
    except Exception as exc:  # reported by the test
        outcome["error"] = repr(exc)
    finally:
        connection.close()


def test_business_user_creates_approves_deploys_and_calls_an_api(
    live_server_url, browser, screenshots, owner, analyst_role
):
    login_page = browser.new_page(viewport={"width": 1280, "height": 800})
    login_page.goto(f"{live_server_url}/accounts/login/")
    login_page.screenshot(path=str(screenshots / "login.png"))
    login_page.close()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_server_url, owner.username, PASSWORD)

    page.goto(f"{live_server_url}/new/")
    page.click("text=Customers in the EU with more than 5 orders")
    expect(page.locator("#id_requirement")).to_have_value("Customers in the EU with more than 5 orders")
    page.fill("#id_requirement", "Customers in the EU")
    page.select_option("#id_role", str(analyst_role.pk))
    page.screenshot(path=str(screenshots / "new-api.png"))
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/executions/[0-9a-f-]+/$"))
    execution_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.wait_for_selector("#live-indicator[data-state=live]")
    rendered_at_load = page.locator("#events [data-seq]").count()

    outcome: dict = {}
    worker = threading.Thread(target=_run_worker, args=(execution_id, outcome))
    worker.start()
    page.wait_for_selector("#events [data-finished]", timeout=PIPELINE_TIMEOUT_MS)
    worker.join(timeout=60)
    execution = AgentExecution.objects.get(pk=execution_id)
    assert execution.status == AgentStatus.COMPLETED, f"pipeline: {execution.status_reason or outcome}"

    # Every phase completed live, over the WebSocket, without a reload.
    for phase in ("exploration", "architecture", "security", "implementation", "testing", "documentation", "learning"):
        expect(page.locator(f"#phase-{phase}")).to_have_class(re.compile(r"\bdone\b"))
    assert page.locator("#events [data-seq]").count() > rendered_at_load + 10
    expect(page.locator("#phases-done")).to_have_text("7")
    page.wait_for_selector("#approve")
    page.screenshot(path=str(screenshots / "execution-completed.png"))

    page.click("#approve")
    page.wait_for_selector("#deploy")
    page.click("#deploy")
    expect(page.locator(".endpoint-panel .alert.success")).to_contain_text("the endpoint is live")
    endpoint = execution.endpoints.get(status=EndpointStatus.DEPLOYED)

    page.click("#try-submit")
    page.wait_for_selector("#try-rows tbody tr")
    assert page.locator("#try-rows tbody tr").count() > 0
    page.locator("#results-panel").screenshot(path=str(screenshots / "results-try-it.png"))
    endpoint.refresh_from_db()
    assert endpoint.call_count == 1

    page.goto(f"{live_server_url}/apis/")
    expect(page.locator("table.apis")).to_contain_text(endpoint.slug)
    page.screenshot(path=str(screenshots / "my-apis.png"), full_page=True)
    page.click("nav.mainnav >> text=MCP")
    expect(page.locator("h1")).to_have_text("MCP servers")
    expect(page.locator(".server")).to_contain_text("Connect a client")
    page.screenshot(path=str(screenshots / "mcp.png"), full_page=True)
    page.click("nav.mainnav >> text=Memories")
    page.fill("#id_q", "customers in the EU")
    page.click("form.filters button[type=submit]")
    expect(page.locator("article.memory").first).to_contain_text("customers")
    page.screenshot(path=str(screenshots / "memories.png"), full_page=True)
    page.goto(f"{live_server_url}/")
    page.screenshot(path=str(screenshots / "runs.png"))
