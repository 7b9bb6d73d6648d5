"""POST /api/v1/executions/<id>/answers/: a waiting run is answered through the API and goes on."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ

from agents.models import AgentStatus
from agents.orchestrator import execution_run
from agents.services import execution_claim, execution_submit
from learning.glossary import glossary_lookup, glossary_terms
from mcpservers.services import mcp_enable
from roles.demo.platform import demo_sales_analyst_permissions
from roles.models import Role
from tests.api.conftest import errors_of

pytestmark = pytest.mark.django_db(transaction=True)

REVENUE = "Top 10 products by revenue in the last 90 days"


@pytest.fixture
def waiting(org, service, member):
    role = Role.objects.create(
        organization=org,
        service=service,
        name="Analyst",
        permissions=demo_sales_analyst_permissions(schema="main", routines=False),
        mcp_enabled=True,
    )
    mcp_enable(role=role)
    execution = execution_submit(user=member, role=role, requirement=REVENUE, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    assert execution.status == AgentStatus.WAITING
    return execution


def _answers(execution) -> dict:
    return {
        q["id"]: next((c for c in q["choices"] if "line_total" in c["label"]), q["choices"][0])["id"]
        for q in execution.questions
    }


def _url(execution) -> str:
    return f"/api/v1/executions/{execution.pk}/answers/"


def test_the_questions_are_listed_and_answering_resumes_the_run(member_client, waiting):
    detail = member_client.get(f"/api/v1/executions/{waiting.pk}/").json()
    assert detail["status"] == "WAITING" and [q["id"] for q in detail["questions"]] == [
        q["id"] for q in waiting.questions
    ]
    queued = OrmQ.objects.count()
    response = member_client.post(_url(waiting), {"answers": _answers(waiting)}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "PENDING" and body["questions"] == [] and len(body["answers"]) == len(waiting.questions)
    assert OrmQ.objects.count() == queued + 1
    assert glossary_lookup(service=waiting.role.service, term="revenue", kind="measure") is not None


def test_a_bad_choice_is_a_400_naming_the_question_and_changes_nothing(member_client, waiting):
    question = waiting.questions[0]
    answers = {**_answers(waiting), question["id"]: {"choice": "no_such_choice"}}
    response = member_client.post(_url(waiting), {"answers": answers}, format="json")
    assert response.status_code == 400
    (error,) = errors_of(response)
    assert error["field"] == f"answers.{question['id']}" and error["code"] == "invalid_choice"
    empty = member_client.post(_url(waiting), {"answers": {}}, format="json")
    assert empty.status_code == 400
    waiting.refresh_from_db()
    assert waiting.status == AgentStatus.WAITING and waiting.questions and not waiting.answers
    assert glossary_terms(service=waiting.role.service) == []


def test_another_organization_gets_404_and_an_admin_may_answer_for_the_member(outsider_client, admin_client, waiting):
    assert outsider_client.post(_url(waiting), {"answers": _answers(waiting)}, format="json").status_code == 404
    waiting.refresh_from_db()
    assert waiting.status == AgentStatus.WAITING and glossary_terms(service=waiting.role.service) == []
    # An admin of the organization may answer for the member who asked.
    assert admin_client.post(_url(waiting), {"answers": _answers(waiting)}, format="json").status_code == 200
