"""Chromium against daphne: a run asks on the live page, the answer lets it finish, and the glossary keeps the answer.

A member asks for revenue, which the demo database can measure in two ways and over several order
statuses; the run asks, the member answers on the live page, and the run goes on to its end. The
answer is then a term of the database's glossary, which an owner edits. Screenshots at desktop and
390 px widths; at 390 px the pages, navigation included, fit the window.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from agents.models import AgentExecution, AgentStatus
from agents.orchestrator import execution_run
from agents.services import execution_answer, execution_claim, execution_submit
from learning.glossary import glossary_lookup
from roles.models import MembershipRole
from tests.browser.conftest import DESKTOP, page_fits, shoot, sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PIPELINE_TIMEOUT_MS = 240_000
# The demo database has two money columns of order lines and orders of several statuses: the run asks.
REVENUE = "Top 10 products by revenue in the last 90 days"


@pytest.fixture
def member(org):
    from tests.conftest import _person

    return _person("mia", org, MembershipRole.MEMBER, staff=False)


def _worker(execution_id: str) -> threading.Thread:
    """What the django-q worker does with the queued task, on another thread (the test's hosts Playwright)."""

    def run() -> None:
        from agents.tasks import run_execution_task

        try:
            run_execution_task(execution_id)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_member_answers_the_runs_question_on_the_live_page_and_the_run_goes_on_to_its_end(
    live_server_url, browser, screenshots, member, analyst_role
):
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, live_server_url, member.username, PASSWORD)
    page.goto(f"{live_server_url}/new/")
    page.fill("#id_requirement", REVENUE)
    page.select_option("#id_role", str(analyst_role.pk))
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/executions/[0-9a-f-]+/$"))
    execution_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.wait_for_selector("#live-indicator[data-state=live]")

    _worker(execution_id).join(timeout=PIPELINE_TIMEOUT_MS / 1000)
    assert AgentExecution.objects.get(pk=execution_id).status == AgentStatus.WAITING
    # The questions arrive over the WebSocket, without a reload.
    questions = page.locator("#questions fieldset.question")
    expect(questions).to_have_count(2, timeout=30_000)
    expect(page.locator("#phase-architecture")).to_contain_text("waiting for your answer")
    measure = page.locator("fieldset.question", has_text="the sum of which column")
    statuses = page.locator("fieldset.question", has_text="values count")
    expect(statuses).to_contain_text("Pick every one that applies.")
    assert statuses.locator("input[type=checkbox]").count() >= 3
    shoot(page, screenshots, "questions")

    measure.locator("label.choice", has_text="order_items.line_total").locator("input").check()
    values = statuses.locator("label.choice", has_text="status = '")
    picked = [re.search(r"= '(\w+)'", values.nth(i).inner_text()).group(1) for i in range(2)]
    for i in range(2):
        values.nth(i).locator("input").check()
    page.click("#answer")
    expect(page.locator("#questions")).to_have_count(0)
    execution = AgentExecution.objects.get(pk=execution_id)
    assert execution.status == AgentStatus.PENDING
    assert [a["phrase"] for a in execution.answers] == ["revenue", "revenue"]

    _worker(execution_id).join(timeout=PIPELINE_TIMEOUT_MS / 1000)
    page.wait_for_selector("#events [data-finished]", timeout=30_000)
    execution.refresh_from_db()
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    for phase in ("architecture", "security", "implementation", "testing", "documentation"):
        expect(page.locator(f"#phase-{phase}")).to_have_class(re.compile(r"\bdone\b"))
    expect(page.locator("#now")).to_contain_text("your API is ready")
    sql = execution.generated_code
    assert "line_total" in sql and f"IN ('{picked[0]}', '{picked[1]}')" in sql
    shoot(page, screenshots, "questions-answered")


def test_the_answered_term_is_in_the_glossary_and_an_owner_edits_it(
    live_server_url, browser, screenshots, owner, member, analyst_role
):
    execution = execution_submit(user=member, role=analyst_role, requirement=REVENUE, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    measure = next(q for q in execution.questions if not q["multiple"])
    statuses = next(q for q in execution.questions if q["multiple"])
    execution_answer(
        execution=execution,
        user=member,
        answers={
            measure["id"]: next(c["id"] for c in measure["choices"] if "line_total" in c["label"]),
            statuses["id"]: [next(c["id"] for c in statuses["choices"] if "'delivered'" in c["label"])],
        },
        enqueue=False,
    )

    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, live_server_url, owner.username, PASSWORD)
    page.click("#nav-glossary")
    page.wait_for_url("**/glossary/**")
    rows = page.locator("#glossary-terms tbody tr", has_text="revenue")
    expect(rows).to_have_count(2)  # what to sum, and which statuses count
    summed = rows.filter(has_text="sum of")
    expect(summed).to_contain_text("line_total")
    expect(summed).to_contain_text("Answered by mia")
    expect(summed.locator("a", has_text=REVENUE[:30])).to_have_attribute("href", f"/executions/{execution.pk}/")
    shoot(page, screenshots, "glossary")

    summed.locator("a.button", has_text="Edit").click()
    page.wait_for_url("**/edit/")
    expect(page.locator("#glossary-form-card h2")).to_contain_text("Change “revenue”")
    expect(page.locator("#id_column")).to_have_value("line_total")
    page.fill("#id_column", "unit_price")
    page.fill("#id_note", "Finance counts list prices")
    page.click("#glossary-save")
    page.wait_for_url(re.compile(r".*/glossary/\?service=.*"))
    summed = page.locator("#glossary-terms tbody tr", has_text="sum of")
    expect(summed).to_contain_text("unit_price")
    expect(summed).to_contain_text("Finance counts list prices")
    term = glossary_lookup(service=analyst_role.service, term="revenue", kind="measure")
    assert term.mapping.column == "unit_price" and term.note == "Finance counts list prices"
    shoot(page, screenshots, "glossary-edited")

    # A member reads the glossary but cannot change it; the page fits a phone.
    reader = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(reader, live_server_url, member.username, PASSWORD)
    reader.goto(f"{live_server_url}/glossary/")
    expect(reader.locator("#glossary-terms")).to_contain_text("unit_price")
    expect(reader.locator("#glossary-form")).to_have_count(0)
    page_fits(reader)
