"""What people reject is never offered again; failures say what to avoid."""

from __future__ import annotations

import pytest

from agents.models import AgentStatus
from agents.orchestrator import _avoid_from, execution_run
from agents.services import execution_claim, execution_submit
from endpoints.models import GeneratedEndpoint
from endpoints.services import endpoint_reject

pytestmark = pytest.mark.django_db(transaction=True)

REQUIREMENT = "Customers in the EU"


def _run(role, user):
    execution = execution_submit(user=user, role=role, requirement=REQUIREMENT, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    return execution


def test_the_reason_of_a_failure_names_the_columns_to_avoid():
    assert _avoid_from("denied columns: ['main.customers.email']", {}) == {"columns": ["email"], "unbounded": []}


def test_a_rejected_design_is_not_offered_again_for_the_same_requirement(analyst_role, owner):
    first = _run(analyst_role, owner)
    assert first.status == AgentStatus.COMPLETED, first.status_reason
    endpoint = GeneratedEndpoint.objects.get(source_execution=first)
    endpoint_reject(endpoint=endpoint, user=owner, comment="these are not the customers we mean")

    second = _run(analyst_role, owner)
    offered = GeneratedEndpoint.objects.filter(source_execution=second)
    assert all(e.sql != endpoint.sql for e in offered)
    if second.status == AgentStatus.FAILED:
        assert "rated not helpful" in second.status_reason
        assert "these are not the customers we mean" in second.status_reason
    else:
        assert second.status == AgentStatus.WAITING
