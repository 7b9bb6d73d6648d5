"""Recorded Claude and GPT tool-use conversations, replayed through the real SDKs, adapters and execution_run.

Each transcript (tests/agents/transcripts/*.json) holds the vendor's answers in the exact wire
shape of its API, agent by agent, with what Nectar's request must carry before each answer. The
SDK client sends real HTTP requests into an in-process transport that answers from the
transcript, so everything between the orchestrator and the wire is the production code: the
agents, the provider engine (fallbacks, repair turns, max_tokens handling), the adapter and the
SDK. The end state is a deployed, verified endpoint answering from the demo database, or a
failed run with a reason a person can act on.
"""

from __future__ import annotations

import json

import pytest

from agents.contracts import Design, Docs, Exploration, Implementation, Reflection, Review, contract_schema
from agents.contracts import TestPlan as PlanContract
from agents.models import AgentExecution, AgentStatus
from agents.orchestrator import execution_run
from agents.providers import provider_for
from agents.services import execution_claim, execution_submit
from endpoints.models import GeneratedEndpoint
from endpoints.runtime import endpoint_run
from tests.agents.recordings import FAKE_KEY
from tests.agents.transcripts import TranscriptServer, transcript

pytestmark = pytest.mark.django_db(transaction=True)

FIXED_EXPLORER_TOOLS = {"search_objects", "describe_object", "sample_rows"}
ANSWER_TOOL = "respond_with_json"


@pytest.fixture
def vendor_settings(settings, sdk_sleeps):
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_PRICES = ""
    settings.ANTHROPIC_API_KEY = FAKE_KEY
    settings.ANTHROPIC_BASE_URL = ""
    settings.OPENAI_API_KEY = FAKE_KEY
    settings.OPENAI_BASE_URL = ""
    settings.LLM_MODEL = ""
    return settings


def _replay(name: str, role, user, settings) -> tuple[AgentExecution, TranscriptServer]:
    recorded = transcript(name)
    settings.LLM_PROVIDER = recorded["vendor"]
    organization = role.organization
    organization.auto_deploy_read_only = True
    organization.save(update_fields=["auto_deploy_read_only"])
    server = TranscriptServer(recorded)
    provider = provider_for(organization=organization, http_client=server.client())
    execution = execution_submit(user=user, role=role, requirement=recorded["requirement"], enqueue=False)
    claimed = execution_claim(execution_id=execution.pk)
    execution_run(execution=claimed, provider=provider)
    claimed.refresh_from_db()
    return claimed, server


def _offered(vendor: str, body: dict) -> set[str]:
    key = "name" if vendor == "anthropic" else None
    return {tool[key] if key else tool["function"]["name"] for tool in body.get("tools", [])}


def _answer_schema(vendor: str, body: dict) -> dict | None:
    """The JSON Schema a structured request asks for (the forced answer tool, or response_format)."""
    if vendor == "anthropic":
        return next((t["input_schema"] for t in body.get("tools", []) if t["name"] == ANSWER_TOOL), None)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"]["schema"]
    return next(
        (t["function"]["parameters"] for t in body.get("tools", []) if t["function"]["name"] == ANSWER_TOOL), None
    )


def _recorded_usage(recorded: dict) -> tuple[int, int]:
    inputs = outputs = 0
    for turns in recorded["agents"].values():
        for turn in turns:
            usage = turn["response"]["usage"]
            if recorded["vendor"] == "anthropic":
                inputs += (
                    usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
                )
                outputs += usage["output_tokens"]
            else:
                inputs += usage["prompt_tokens"]
                outputs += usage["completion_tokens"]
    return inputs, outputs


def _recorded_tool_calls(recorded: dict) -> int:
    """The Role's tools the model called (the forced answer tool is not one of them)."""
    count = 0
    for turns in recorded["agents"].values():
        for turn in turns:
            response = turn["response"]
            if recorded["vendor"] == "anthropic":
                blocks = response["content"]
                count += sum(1 for b in blocks if b["type"] == "tool_use" and b["name"] != ANSWER_TOOL)
            else:
                count += len(response["choices"][0]["message"].get("tool_calls") or [])
    return count


def _assert_deployed_and_answering(execution: AgentExecution) -> GeneratedEndpoint:
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
    assert endpoint.status == "deployed" and endpoint.verdict == "verified", endpoint.verification
    assert endpoint.slug == "customers-in-eu"
    answer = endpoint_run(endpoint=endpoint, values={}, from_text=True)
    assert answer.status == 200 and answer.body["results"]
    assert {row["region"] for row in answer.body["results"]} == {"EU"}
    uk = endpoint_run(endpoint=endpoint, values={"region": "UK"}, from_text=True)
    assert {row["region"] for row in uk.body["results"]} == {"UK"}
    return endpoint


@pytest.mark.parametrize("name", ["anthropic_customers_in_the_eu", "openai_customers_in_the_eu"])
def test_a_recorded_conversation_reaches_a_deployed_verified_endpoint(name, analyst_role, owner, vendor_settings):
    recorded = transcript(name)
    vendor = recorded["vendor"]

    execution, server = _replay(name, analyst_role, owner, vendor_settings)

    assert server.problems == []
    assert server.remaining() == {}, "every recorded turn was asked for"
    _assert_deployed_and_answering(execution)

    # The small fixed toolset, per phase; phases that need no tools get none.
    for body in server.asked("explorer"):
        assert _offered(vendor, body) - {ANSWER_TOOL} <= FIXED_EXPLORER_TOOLS
    assert any(_offered(vendor, body) == FIXED_EXPLORER_TOOLS for body in server.asked("explorer"))
    for agent in ("security", "documenter"):
        for body in server.asked(agent):
            assert _offered(vendor, body) <= {ANSWER_TOOL}, agent
    assert all(_offered(vendor, b) - {ANSWER_TOOL} <= {"try_sql"} for b in server.asked("implementer"))

    # Each structured request asks for the phase's contract, as generated from its pydantic model.
    expected = {
        "explorer": [contract_schema(Reflection), contract_schema(Exploration)],
        "architect": [contract_schema(Reflection), contract_schema(Design)],
        "security": [contract_schema(Review)],
        "implementer": [contract_schema(Implementation)],
        "tester": [contract_schema(Reflection), contract_schema(PlanContract)],
        "documenter": [contract_schema(Docs)],
    }
    for agent, schemas in expected.items():
        asked = [_answer_schema(vendor, body) for body in server.asked(agent)]
        asked = [schema for schema in asked if schema is not None]
        assert asked, agent
        assert all(schema in schemas for schema in asked), agent
        assert schemas[-1] in asked, agent

    # Tool results went back as the vendor's own shape, with what the Role's tools really answered.
    explorer_last = server.asked("explorer")[-1]
    if vendor == "anthropic":
        results = [
            block
            for message in explorer_last["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block["type"] == "tool_result"
        ]
        uses = [
            block
            for message in explorer_last["messages"]
            if message["role"] == "assistant"
            for block in message["content"]
            if block["type"] == "tool_use"
        ]
        assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    else:
        results = [m for m in explorer_last["messages"] if m["role"] == "tool"]
        calls = [c for m in explorer_last["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
        assert [r["tool_call_id"] for r in results] == [c["id"] for c in calls]
    described = next(r["content"] for r in results if "region" in r["content"] and "columns" in r["content"])
    assert "customer_id" in described and "phone" not in described, "the Role's hidden column stays hidden"

    # The model's broken answers were repaired: the contract's problems went back to it.
    repairs = [e.payload for e in execution.events.filter(kind="repair")]
    if vendor == "anthropic":
        assert any("path" in p for r in repairs for p in r["problems"])
        first, second = server.asked("security")
        assert second["max_tokens"] == 2 * first["max_tokens"], "an answer cut off at max_tokens gets twice the room"
    else:
        assert any("limit" in p for r in repairs for p in r["problems"])
        assert any("approved" in p for r in repairs for p in r["problems"])
        first, second = server.asked("implementer")[1:]
        assert second["max_completion_tokens"] == 2 * first["max_completion_tokens"]
        repaired = server.asked("explorer")[-1]["messages"][-1]["content"]
        assert "not valid JSON" in repaired

    # Every LLM call is recorded with its tokens, and they add up to what the vendor reported.
    calls = [e.payload for e in execution.events.filter(kind="llm_call")]
    assert calls and all(c["input_tokens"] > 0 and c["output_tokens"] > 0 for c in calls)
    inputs, outputs = _recorded_usage(recorded)
    assert sum(c["input_tokens"] for c in calls) == inputs
    assert sum(c["output_tokens"] for c in calls) == outputs
    assert sum(c["requests"] for c in calls) == len(server.requests)
    metrics = execution.performance_metrics
    assert metrics["input_tokens"] == inputs and metrics["output_tokens"] == outputs
    invoked = [t for child in execution.children.all() for t in child.tools_invoked or []]
    assert len(invoked) == metrics["tool_calls"] == _recorded_tool_calls(recorded)
    assert all(t["ok"] for t in invoked), [t["error"] for t in invoked]


@pytest.mark.parametrize(
    ("name", "words"),
    [("anthropic_refusal", "collecting information about individual people"), ("openai_refusal", "can't assist")],
)
def test_a_refusal_fails_the_run_with_the_models_words_and_no_endpoint(
    name, words, analyst_role, owner, vendor_settings
):
    execution, server = _replay(name, analyst_role, owner, vendor_settings)

    assert server.problems == [] and server.remaining() == {}
    assert len(server.requests) == 1, "a refusal is not asked again"
    assert execution.status == AgentStatus.FAILED
    assert "declined" in execution.status_reason and words in execution.status_reason
    assert "Traceback" not in execution.status_reason
    assert not GeneratedEndpoint.objects.filter(source_execution=execution).exists()
    refused = execution.events.get(kind="llm_call").payload
    assert refused["code"] == "refused" and refused["input_tokens"] > 0


def test_a_model_that_keeps_breaking_the_contract_fails_the_run_saying_what_was_wrong(
    analyst_role, owner, vendor_settings
):
    execution, server = _replay("openai_wrong_form", analyst_role, owner, vendor_settings)

    assert server.problems == [] and server.remaining() == {}
    assert execution.status == AgentStatus.FAILED
    reason = execution.status_reason
    assert "designing the API" in reason and "wrong form" in reason and "limit" in reason
    assert "architect" not in reason.lower() and "language model" not in reason.lower()
    assert not GeneratedEndpoint.objects.filter(source_execution=execution).exists()
    # The repair turns told the model exactly what to fix, in the conversation it answers.
    repair = json.dumps(server.asked("architect")[-1]["messages"][-1])
    assert "reserved" in repair or "limit" in repair
