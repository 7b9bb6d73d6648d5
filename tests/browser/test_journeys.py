"""Every journey of issue 17 in Chromium, at desktop (1280 px) and mobile (390 px) widths, with screenshots.

Admin: a Service saved with no password after testing the typed values. Requirement: the Role picker
remembers. Live page: plain progress, details on demand. Results: chart and CSV. Approvals: the owner's
count and list, the member's notification. OpenAPI in Swagger UI. MCP: one Role at a time. Memories:
chips and a filter by database. At 390 px the navigation fits without horizontal overflow.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.events import event_append
from agents.models import PHASE_ORDER, AgentStatus
from agents.services import execution_submit
from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy, endpoint_run_tests
from learning.services import learn_from_failure, memory_create
from mcpservers.services import mcp_enable
from roles.models import Membership, MembershipRole, Role, Service
from tests.browser.conftest import DESKTOP, MOBILE, page_fits, shoot, sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _signed_in(browser, base_url: str, user):
    page = browser.new_page(viewport=DESKTOP, accept_downloads=True)
    sign_in(page, base_url, user.username, PASSWORD)
    return page


def _completed_run(member, role, *, sql: str, slug: str, requirement: str, response_schema: dict | None = None):
    """A finished run of the member with its draft endpoint, as a worker leaves it."""
    execution = execution_submit(user=member, role=role, requirement=requirement, enqueue=False)
    event_append(execution=execution, kind="status", payload={"status": AgentStatus.RUNNING, "attempt": 1})
    for name in PHASE_ORDER:
        event_append(execution=execution, kind="phase", phase=name, payload={"phase": name, "status": "started"})
        if name == "exploration":
            for tool in ("analyze_customers_schema", "query_customers"):
                event_append(
                    execution=execution,
                    kind="tool_call",
                    phase=name,
                    agent="EXPLORER",
                    payload={"tool": tool, "arguments": {"limit": 5}},
                )
                event_append(
                    execution=execution,
                    kind="tool_result",
                    phase=name,
                    agent="EXPLORER",
                    payload={"tool": tool, "ok": True, "rows": 5, "duration_ms": 3, "preview": "[...]"},
                )
        event_append(
            execution=execution,
            kind="phase",
            phase=name,
            payload={"phase": name, "status": "completed", "seconds": 0.3},
        )
    endpoint = endpoint_create_draft(
        organization=role.organization,
        role=role,
        execution=execution,
        slug=slug,
        description=requirement,
        parameters={"type": "object", "properties": {}},
        sql=sql,
        response_schema=response_schema or {},
        tests=[{"name": "answers", "params": {}, "expect": {"status": 200, "min_rows": 1}}],
        docs="",
    )
    endpoint_run_tests(endpoint=endpoint)
    execution.status, execution.success, execution.completed_at = AgentStatus.COMPLETED, True, timezone.now()
    execution.result = {"endpoint": {"id": str(endpoint.pk), "slug": slug, "version": 1}}
    execution.save()
    event_append(
        execution=execution,
        kind="status",
        payload={"status": AgentStatus.COMPLETED, "endpoint": {"id": str(endpoint.pk), "status": "draft"}},
    )
    return execution, endpoint


@pytest.fixture
def member(org):
    from tests.conftest import _person

    return _person("mia", org, MembershipRole.MEMBER, staff=False)


def test_admin_tests_the_typed_values_then_saves_a_service_without_a_password(
    live_server_url, browser, screenshots, owner, org, browser_demo_path
):
    page = _signed_in(browser, live_server_url, owner)
    page.goto(f"{live_server_url}/admin/roles/service/add/")
    page.select_option("#id_organization", str(org.pk))
    page.fill("#id_name", "Shop file")
    page.select_option("#id_engine", "sqlite")
    page.fill("#id_database", browser_demo_path)
    page.click("button[name=_test_connection]")
    expect(page.locator("ul.messagelist")).to_contain_text("connected in")
    expect(page.locator("#id_name")).to_have_value("Shop file")
    expect(page.locator("#id_database")).to_have_value(browser_demo_path)
    assert not Service.objects.filter(name="Shop file").exists()
    shoot(page, screenshots, "admin-service-test-connection")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    assert Service.objects.get(name="Shop file").password == ""


def test_the_role_picker_remembers_the_users_role_and_shows_its_database(
    live_server_url, browser, screenshots, member, analyst_role, org
):
    Role.objects.create(
        organization=org, service=analyst_role.service, name="Aardvark audit", permissions=[], mcp_enabled=True
    )
    page = _signed_in(browser, live_server_url, member)
    page.goto(f"{live_server_url}/new/")
    expect(page.locator("#id_role option:checked")).to_have_text("Choose a role…")
    expect(page.locator("#id_role")).to_contain_text("Sales analyst — Demo shop (SQLite)")
    shoot(page, screenshots, "requirement")
    page.fill("#id_requirement", "Customers in the EU")
    page.select_option("#id_role", str(analyst_role.pk))
    page.click("#generate")
    page.wait_for_url("**/executions/**")
    page.goto(f"{live_server_url}/new/")
    expect(page.locator("#id_role option:checked")).to_have_text("Sales analyst — Demo shop (SQLite)")


def test_the_live_page_shows_plain_progress_and_folds_the_tool_calls(
    live_server_url, browser, screenshots, member, analyst_role
):
    execution, _ = _completed_run(
        member,
        analyst_role,
        sql="SELECT customer_id, region FROM customers",
        slug="all-customers",
        requirement="All customers",
    )
    page = _signed_in(browser, live_server_url, member)
    page.goto(f"{live_server_url}/executions/{execution.pk}/")
    expect(page.locator("#now")).to_contain_text("your API is ready")
    expect(page.locator("#phase-exploration")).to_contain_text("Looked at 1 table or view of the database.")
    expect(page.locator("#phase-testing")).to_contain_text("done")
    tool_events = page.locator("#events .event.kind-tool_call")
    assert tool_events.count() == 2
    expect(tool_events.first).to_be_hidden()
    expect(page.locator("#events .event.kind-phase").first).to_be_visible()
    shoot(page, screenshots, "live-page")
    page.click("#toggle-details")
    expect(tool_events.first).to_be_visible()
    expect(page.locator("#toggle-details")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(screenshots / "live-page-details-desktop.png"), full_page=True)
    page.reload()
    expect(tool_events.first).to_be_visible()  # the choice is remembered


def test_results_have_a_chart_and_a_csv_and_approvals_reach_owner_and_member(
    live_server_url, browser, screenshots, owner, member, analyst_role
):
    _, endpoint = _completed_run(
        member,
        analyst_role,
        sql="SELECT region, COUNT(*) AS customers FROM customers GROUP BY region ORDER BY region",
        slug="customers-per-region",
        requirement="Customers per region",
        response_schema={
            "type": "object",
            "properties": {"region": {"type": "string"}, "customers": {"type": "integer"}},
        },
    )
    reviewer = _signed_in(browser, live_server_url, owner)
    expect(reviewer.locator("#nav-approvals .count")).to_have_text("1")
    reviewer.click("#nav-approvals")
    expect(reviewer.locator("#approvals")).to_contain_text("customers-per-region")
    shoot(reviewer, screenshots, "approvals")
    reviewer.click("#approvals >> text=Review")
    reviewer.click("#approve")
    reviewer.wait_for_selector("#deploy")
    reviewer.click("#deploy")
    expect(reviewer.locator(".endpoint-panel .alert.success")).to_contain_text("the endpoint is live")
    reviewer.click("#try-submit")
    chart = reviewer.locator("#try-result-" + str(endpoint.pk) + " figure.result-chart")
    expect(chart).to_have_attribute("data-chart", "bar")
    assert chart.locator("rect").count() == 5
    with reviewer.expect_download() as download:
        reviewer.click("#download-csv")
    with open(download.value.path(), encoding="utf-8") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert rows[0] == ["region", "customers"] and len(rows) == 6 and all(r[1].isdigit() for r in rows[1:])
    shoot(reviewer, screenshots, "results-chart")

    asker = _signed_in(browser, live_server_url, member)
    expect(asker.locator("#nav-notifications .count")).to_have_text("2")
    asker.click("#nav-notifications")
    expect(asker.locator("main")).to_contain_text("customers-per-region v1 was approved by olivia")
    expect(asker.locator("main")).to_contain_text("customers-per-region v1 is live")
    shoot(asker, screenshots, "notifications")
    asker.click("#mark-all-read")
    expect(asker.locator("#nav-notifications .count")).to_have_count(0)


def test_the_organizations_openapi_loads_in_swagger_ui(
    live_server_url, browser, screenshots, owner, member, analyst_role
):
    _, endpoint = _completed_run(
        member, analyst_role, sql="SELECT customer_id, region FROM customers", slug="all-customers", requirement="All"
    )
    endpoint_deploy(endpoint=endpoint_approve(endpoint=endpoint, user=owner), user=owner)
    page = _signed_in(browser, live_server_url, member)
    page.goto(f"{live_server_url}/apis/")
    page.click("#openapi-link")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.endswith("/api/v1/x/acme/all-customers") for p in paths)
    assert any(p.endswith("/api/v1/x/acme/all-customers/v1") for p in paths)
    shoot(page, screenshots, "openapi-swagger")


def test_the_mcp_page_shows_one_role_at_a_time_remote_first(
    live_server_url, browser, screenshots, owner, analyst_role, org
):
    support = Role.objects.create(
        organization=org, service=analyst_role.service, name="Support desk", permissions=[], mcp_enabled=True
    )
    mcp_enable(role=support)
    page = _signed_in(browser, live_server_url, owner)
    page.goto(f"{live_server_url}/mcp-servers/")
    assert page.locator("section.server").count() == 1
    first = page.locator("#configs details").first
    expect(first).to_have_attribute("data-config", "cursor")
    expect(page.locator("[data-config=claude_desktop] summary")).to_contain_text("on the Nectar server host only")
    shoot(page, screenshots, "mcp")
    page.select_option("#mcp-role", str(support.pk))
    page.wait_for_url("**role=*")
    expect(page.locator("section.server h2")).to_contain_text("Support desk")


def test_the_memory_browser_reads_plainly_and_filters_by_database(
    live_server_url, browser, screenshots, member, analyst_role, org
):
    execution = execution_submit(user=member, role=analyst_role, requirement="EU customers", enqueue=False)
    learn_from_failure(
        execution=execution,
        reason="the security review rejected the design: it reads customers.email",
        phase="security",
        attempted={"design": {"method": "GET", "path": "/eu"}, "avoid": {"columns": ["customers.email"]}},
    )
    memory_create(
        organization=org,
        type="CODE_SNIPPET",
        content="-- EU customers\nSELECT customer_id FROM customers WHERE region = :region",
        tags=["sql", "object:main.customers"],
        service=analyst_role.service,
    )
    other = Service.objects.create(organization=org, name="Warehouse", engine="sqlite", database="/tmp/none.db")
    memory_create(organization=org, type="BUSINESS_RULE", content="Pallets count as one unit", service=other)
    page = _signed_in(browser, live_server_url, member)
    page.goto(f"{live_server_url}/memories/")
    expect(page.locator(".chip.tag", has_text="object:main.customers")).to_be_visible()
    expect(page.locator("pre.code.sql").first).to_contain_text("SELECT customer_id FROM customers")
    expect(page.locator("article.memory.anti").first).to_contain_text("Rejected: avoid")
    shoot(page, screenshots, "memories")
    page.select_option("#id_service", str(other.pk))
    page.click("form.filters button[type=submit]")
    expect(page.locator("article.memory")).to_have_count(1)
    expect(page.locator("article.memory")).to_contain_text("Pallets count as one unit")


def test_the_navigation_fits_on_a_phone_on_every_page(live_server_url, browser, screenshots, owner, analyst_role):
    Membership.objects.filter(user=owner).update(role=MembershipRole.OWNER)
    page = browser.new_page(viewport=MOBILE)
    sign_in(page, live_server_url, owner.username, PASSWORD)
    for path in ("/", "/new/", "/apis/", "/mcp-servers/", "/memories/", "/approvals/", "/notifications/"):
        page.goto(f"{live_server_url}{path}")
        page_fits(page)
    page.goto(f"{live_server_url}/")
    page.screenshot(path=str(screenshots / "navigation-mobile.png"))
