"""python manage.py generate_api: the pipeline in the terminal, human-readable or as one JSON result."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import AgentExecution, AgentStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_json_mode_prints_one_machine_readable_result(analyst_role, owner):
    out = StringIO()
    call_command(
        "generate_api", "Customers with no activity in the last 90 days", role="Sales analyst", json=True, stdout=out
    )
    result = json.loads(out.getvalue())
    assert result["status"] == AgentStatus.COMPLETED
    endpoint = result["endpoint"]
    assert endpoint["method"] == "GET"
    assert endpoint["url"].endswith(f"/api/v1/x/{analyst_role.organization.slug}/{endpoint['slug']}")
    assert "NOT EXISTS" in endpoint["sql"].upper()
    assert endpoint["test_results"]["cases"] and all(c["passed"] for c in endpoint["test_results"]["cases"])
    assert "curl" in endpoint["docs"]
    # The agents' prose and the platform's reference appear once each, with the live URL only.
    assert endpoint["docs"].count("```bash") == 1
    assert "example.com" not in endpoint["docs"]
    assert result["metrics"]["agent_steps"] > 0
    assert AgentExecution.objects.get(pk=result["execution_id"]).user == owner


def test_human_mode_shows_progress_design_sql_tests_and_docs(analyst_role, owner):
    out = StringIO()
    call_command("generate_api", "Customers in the EU", role=str(analyst_role.pk), stdout=out)
    text = out.getvalue()
    for expected in ("exploration", "documentation", "SQL:", "Tests:", "PASS", "Documentation:", "GET "):
        assert expected in text


def test_unknown_role_and_failures_are_reported_as_command_errors(analyst_role, owner):
    with pytest.raises(CommandError, match="No role named"):
        call_command("generate_api", "Customers in the EU", role="Nobody")
    with pytest.raises(CommandError, match="it asks for a prediction"):
        call_command(
            "generate_api",
            "Predict which customers will churn next month",
            role="Sales analyst",
            stdout=StringIO(),
            stderr=StringIO(),
        )


def test_role_names_match_in_any_case(analyst_role, owner):
    out = StringIO()
    call_command("generate_api", "Customers in the EU", role="sales ANALYST", json=True, stdout=out)
    assert json.loads(out.getvalue())["status"] == AgentStatus.COMPLETED


def test_a_misspelt_role_gets_did_you_mean_suggestions(analyst_role):
    with pytest.raises(CommandError, match=r"No role named 'Sales analist'\. Did you mean 'Sales analyst'\?"):
        call_command("generate_api", "Customers in the EU", role="Sales analist")


def test_a_wrong_organization_is_named_as_such(analyst_role):
    slug = analyst_role.organization.slug
    with pytest.raises(CommandError, match=rf"No organization with the slug '{slug}x'\. Did you mean '{slug}'\?"):
        call_command("generate_api", "Customers in the EU", role="Sales analyst", org=f"{slug}x")


def test_a_failure_is_printed_once_and_the_spinner_is_stopped(analyst_role, owner):
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "generate_api",
            "Predict which customers will churn next month",
            role="Sales analyst",
            stdout=out,
            stderr=err,
        )
    reason = AgentExecution.objects.get(business_requirement__startswith="Predict").status_reason
    assert reason and reason in str(raised.value)
    assert reason not in out.getvalue() and reason not in err.getvalue()
    assert "stopped during" in out.getvalue()
    # Nothing is left drawing after the command returned: the last line is not a spinner frame.
    assert "starting" not in out.getvalue().splitlines()[-1]
