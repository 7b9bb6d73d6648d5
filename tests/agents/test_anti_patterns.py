"""An anti-pattern learned from a failure steers the next design away from what failed."""

from __future__ import annotations

import pytest

from agents.models import AgentExecution, AgentStatus
from agents.orchestrator import _avoid_from, execution_run
from agents.services import execution_claim, execution_submit
from endpoints.models import GeneratedEndpoint
from learning.services import learn_from_failure

pytestmark = pytest.mark.django_db(transaction=True)

REQUIREMENT = "Customers in the EU with their email"


def _generate(role, user) -> GeneratedEndpoint:
    execution = execution_submit(user=user, role=role, requirement=REQUIREMENT, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    return GeneratedEndpoint.objects.get(source_execution=execution)


def test_the_reason_of_a_failure_names_what_to_avoid():
    design = {"objects": [{"schema": "main", "name": "orders"}]}
    assert _avoid_from("denied columns: ['main.customers.email']", design) == {"columns": ["email"], "unbounded": []}
    assert _avoid_from("the result is not bounded by a LIMIT", design)["unbounded"] == ["orders"]


def test_a_rejected_column_is_left_out_of_the_next_design(analyst_role, owner):
    first = _generate(analyst_role, owner)
    assert "email" in first.sql
    failed = AgentExecution.objects.create(
        organization=analyst_role.organization,
        user=owner,
        role=analyst_role,
        business_requirement=REQUIREMENT,
        status=AgentStatus.FAILED,
    )
    reason = "the security review rejected the design: personal data: exposes 'main.customers.email'"
    learn_from_failure(
        execution=failed,
        reason=reason,
        phase="security",
        attempted={"design": {}, "sql": first.sql, "avoid": _avoid_from(reason, {})},
    )
    second = _generate(analyst_role, owner)
    assert "email" not in second.sql
    assert second.version == first.version + 1
