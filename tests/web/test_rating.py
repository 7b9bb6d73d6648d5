"""Rating down on the page takes a comment and says what it does: this design is not offered again."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from agents.models import AgentStatus
from agents.orchestrator import execution_run
from agents.services import execution_claim, execution_submit
from endpoints.interpretation import design_fingerprint
from endpoints.models import GeneratedEndpoint
from learning.services import rejected_designs
from tests.web.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

REQUIREMENT = "Customers in the EU"


def test_rating_down_with_a_comment_confirms_the_design_will_not_be_offered_again(client, member, analyst_role):
    execution = execution_submit(user=member, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason

    page = unescape(login(client, member).get(reverse("execution-detail", args=[execution.pk])).text)
    assert 'id="rate-down"' in page and "won't be offered again" in page

    response = client.post(
        reverse("execution-rate", args=[execution.pk]),
        {"up": "0", "comment": "It should list only active customers"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    confirmation = unescape(response.text)
    assert "this design won't be offered again" in confirmation
    assert "It should list only active customers" in confirmation
    execution.refresh_from_db()
    assert execution.rating == -1 and execution.feedback == "It should list only active customers"
    endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
    rejected = rejected_designs(
        organization=execution.organization, service=analyst_role.service, requirement=REQUIREMENT
    )
    assert "It should list only active customers" in rejected[design_fingerprint(endpoint.interpretation)]


def test_a_rating_without_a_choice_is_refused_and_changes_nothing(client, member, completed):
    response = login(client, member).post(reverse("execution-rate", args=[completed.pk]), {"comment": "meh"})
    assert response.status_code == 400
    completed.refresh_from_db()
    assert completed.rating is None and not completed.feedback


def test_an_outsider_cannot_rate_a_run_of_another_organization(client, outsider, completed):
    response = login(client, outsider).post(reverse("execution-rate", args=[completed.pk]), {"up": "0"})
    assert response.status_code == 404
    completed.refresh_from_db()
    assert completed.rating is None
