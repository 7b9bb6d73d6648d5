"""A waiting run asks on its live page: answer there (the run goes on, the glossary learns), or cancel it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_q.models import OrmQ

from agents.models import AgentStatus
from agents.orchestrator import execution_run
from agents.services import execution_claim, execution_submit
from agents.tasks import run_execution_task
from learning.glossary import glossary_lookup, glossary_terms
from tests.conftest import _person
from tests.web.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

REVENUE = "Top 10 products by revenue in the last 90 days"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def waiting(member, analyst_role):
    """The member's run, really run by the pipeline until it asks."""
    execution = execution_submit(user=member, role=analyst_role, requirement=REVENUE, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    assert execution.status == AgentStatus.WAITING and execution.questions
    return execution


def _form(execution) -> dict:
    """An answer to every question, as the page posts it: line_total for revenue, else the first choice."""
    data = {}
    for q in execution.questions:
        pick = next((c for c in q["choices"] if "line_total" in c["label"]), q["choices"][0])
        data[f"q-{q['id']}"] = pick["id"]
    return data


def test_the_live_page_shows_each_question_with_its_choices_an_answer_button_and_cancel(client, member, waiting):
    page = login(client, member).get(reverse("execution-detail", args=[waiting.pk])).text
    assert 'id="answer"' in page and 'id="cancel"' in page
    assert "Waiting for your answer" in page
    for q in waiting.questions:
        assert f'id="question-{q["id"]}"' in page
        kind = "checkbox" if q["multiple"] else "radio"
        for c in q["choices"]:
            assert f'type="{kind}" name="q-{q["id"]}" value="{c["id"]}"' in page
        if q["allow_other"]:
            assert f'name="q-{q["id"]}-other"' in page
    assert reverse("execution-answer", args=[waiting.pk]) in page


def test_answering_on_the_page_fills_the_glossary_queues_the_run_and_it_goes_on(client, member, waiting):
    queued = OrmQ.objects.count()
    response = login(client, member).post(reverse("execution-answer", args=[waiting.pk]), _form(waiting), **HTMX)
    assert response.status_code == 200
    assert 'id="questions"' not in response.text
    waiting.refresh_from_db()
    assert waiting.status == AgentStatus.PENDING and waiting.questions == []
    assert OrmQ.objects.count() == queued + 1  # enqueued to the worker
    term = glossary_lookup(service=waiting.role.service, term="revenue", kind="measure")
    assert term is not None and "line_total" in term.mapping.describe()
    glossary_page = client.get(reverse("glossary"), {"service": waiting.role.service_id}).text
    assert f"Answered by {member.username} in" in glossary_page  # where the term came from
    assert reverse("execution-detail", args=[waiting.pk]) in glossary_page

    run_execution_task(str(waiting.pk))  # what the worker does with the queued task
    waiting.refresh_from_db()
    assert waiting.status in (AgentStatus.COMPLETED, AgentStatus.WAITING), waiting.status_reason
    assert waiting.events.filter(kind="answers").exists()
    assert waiting.events.filter(kind="phase", payload__phase="security").exists()  # the design went further


def test_a_bad_answer_is_refused_with_a_clear_error_and_changes_nothing(client, member, waiting):
    login(client, member)
    url = reverse("execution-answer", args=[waiting.pk])
    nothing = client.post(url, {}, **HTMX)
    assert nothing.status_code == 400 and "Answer" in nothing.text and 'id="answer-error"' in nothing.text
    bad = {f"q-{q['id']}": "not_a_choice" for q in waiting.questions}
    refused = client.post(url, bad, **HTMX)
    assert refused.status_code == 400 and "Expected" in refused.text
    assert 'id="questions"' in refused.text  # the questions stay on the page
    waiting.refresh_from_db()
    assert waiting.status == AgentStatus.WAITING and waiting.questions and not waiting.answers
    assert glossary_terms(service=waiting.role.service) == []


def test_only_the_requester_or_a_manager_answers_and_another_organization_sees_nothing(
    client, org, member, admin_member, outsider, waiting
):
    url = reverse("execution-answer", args=[waiting.pk])
    colleague = _person("cole", org, "member")
    assert login(client, colleague).post(url, _form(waiting), **HTMX).status_code == 403
    assert login(client, outsider).post(url, _form(waiting), **HTMX).status_code == 404
    assert login(client, outsider).get(reverse("execution-detail", args=[waiting.pk])).status_code == 404
    page = login(client, colleague).get(reverse("execution-detail", args=[waiting.pk])).text
    assert 'id="answer"' not in page and "The person who asked" in page
    waiting.refresh_from_db()
    assert waiting.status == AgentStatus.WAITING and glossary_terms(service=waiting.role.service) == []
    # An admin of the organization may answer for the requester.
    assert login(client, admin_member).post(url, _form(waiting), **HTMX).status_code == 200
    waiting.refresh_from_db()
    assert waiting.status == AgentStatus.PENDING


def test_a_waiting_run_is_cancelled_from_the_page_and_then_takes_no_answer(client, member, waiting):
    login(client, member)
    response = client.post(reverse("execution-cancel", args=[waiting.pk]), **HTMX)
    assert response.status_code == 200
    waiting.refresh_from_db()
    assert waiting.status == AgentStatus.FAILED and waiting.status_reason == "cancelled by the user"
    late = client.post(reverse("execution-answer", args=[waiting.pk]), _form(waiting), **HTMX)
    assert late.status_code == 409 and "not waiting" in late.text
    assert glossary_terms(service=waiting.role.service) == []
