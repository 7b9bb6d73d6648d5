"""A model that does exactly what each prompt says, behind a local OpenAI-compatible server, through the worker.

The literal model (tests/agents/literal_model.py) knows nothing of these tests: whatever it
builds comes from the prompts and schemas Nectar sends. If the prompts asked for something the
contracts or the endpoint layer refuse, or left out what a phase needs, this run would not end
with a deployed endpoint.
"""

from __future__ import annotations

import pytest

from agents.models import AgentStatus, ModelCapability
from agents.services import execution_submit
from agents.tasks import run_execution_task
from endpoints.models import GeneratedEndpoint
from endpoints.runtime import endpoint_run
from tests.agents.literal_model import MODEL, LiteralServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def literal_model(settings):
    with LiteralServer() as server:
        settings.LLM_PROVIDER = "openai"
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = ""
        settings.LLM_MODEL = MODEL
        settings.LLM_MAX_RETRIES = 0
        settings.LLM_CONTEXT_TOKENS = 0
        yield server


@pytest.mark.parametrize(
    ("requirement", "column", "value"), [("Customers in the EU", "region", "EU"), ("Orders in the UK", "region", "UK")]
)
def test_a_model_that_follows_the_prompts_literally_reaches_a_deployed_endpoint(
    requirement, column, value, analyst_role, owner, literal_model
):
    organization = analyst_role.organization
    organization.auto_deploy_read_only = True
    organization.save(update_fields=["auto_deploy_read_only"])
    execution = execution_submit(user=owner, role=analyst_role, requirement=requirement, enqueue=False)

    status = run_execution_task(str(execution.pk))

    execution.refresh_from_db()
    assert status == AgentStatus.COMPLETED, execution.status_reason
    endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
    assert endpoint.status == "deployed" and endpoint.verdict == "verified", endpoint.verification
    rows = endpoint_run(endpoint=endpoint, values={}, from_text=True).body["results"]
    assert rows and {row[column] for row in rows} == {value}
    # The server was probed once and every structured answer asked for the phase's schema.
    row = ModelCapability.objects.get(model=MODEL, base_url=literal_model.url)
    assert row.tool_calling and row.json_schema
    calls = [e.payload for e in execution.events.filter(kind="llm_call")]
    assert len(calls) == len(literal_model.requests) - 3  # the three probe requests are not the run's
    assert all(c["input_tokens"] > 0 for c in calls)
    offered = {t["function"]["name"] for body in literal_model.requests for t in body.get("tools") or []}
    assert offered <= {"search_objects", "describe_object", "sample_rows", "try_sql", "respond_with_json"}
