"""A Role over 500 tables: the agents work through the small fixed toolset within their prompt and phase budgets.

The schema is generated here (SQLite): `customers` and `orders` among 498 other tables, some of
which share their column names. The pipeline runs with the offline provider and with the
literal model behind the OpenAI adapter; every prompt is measured as it is sent, and the token
budget is stored on the execution, so a paused run continues it when resumed.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from django.conf import settings

from agents.base import CHARS_PER_TOKEN, estimate_tokens
from agents.models import AgentExecution, AgentStatus, Phase
from agents.orchestrator import PHASE_SHARES, execution_run
from agents.providers.offline import OfflineProvider
from agents.services import execution_claim, execution_resume, execution_submit
from agents.tasks import run_execution_task
from endpoints.models import GeneratedEndpoint
from endpoints.runtime import endpoint_run
from mcpservers.services import mcp_enable
from roles.models import Engine, Role, Service
from tests.agents.literal_model import MODEL, LiteralServer

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = 500
FIXED_TOOLS = {"search_objects", "describe_object", "sample_rows", "try_sql"}
ANSWER_TOOL = "respond_with_json"
REQUIREMENT = "Customers in the EU"
AREAS = ["warehouse", "shipment", "invoice", "ledger", "campaign", "payroll", "asset", "vendor", "audit", "ticket"]
THINGS = ["batch", "line", "entry", "snapshot", "archive", "staging", "history", "summary", "detail", "mapping"]
AGENT_PHASES = {
    "explorer": Phase.EXPLORATION,
    "architect": Phase.ARCHITECTURE,
    "security": Phase.SECURITY,
    "implementer": Phase.IMPLEMENTATION,
    "tester": Phase.TESTING,
    "documenter": Phase.DOCUMENTATION,
}


@pytest.fixture(scope="module")
def wide_sqlite_path(tmp_path_factory):
    """500 tables: customers (with a region), orders, and 498 others with look-alike columns."""
    path = tmp_path_factory.mktemp("wide") / "wide.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, "
        "region TEXT NOT NULL, segment TEXT)"
    )
    connection.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
        [(i, f"First{i}", f"Last{i}", ["EU", "UK", "US"][i % 3], ["smb", "enterprise"][i % 2]) for i in range(1, 61)],
    )
    connection.execute(
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers, "
        "total NUMERIC(12, 2), ordered_at DATE)"
    )
    connection.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?)", [(i, 1 + i % 60, i * 3.5, "2026-01-01") for i in range(1, 121)]
    )
    for i in range(TABLES - 2):
        name = f"{AREAS[i % 10]}_{THINGS[(i // 10) % 10]}_{i:03d}"
        connection.execute(
            f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, code TEXT, status TEXT, quantity INTEGER, noted_at DATE)"
        )
        connection.executemany(
            f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?)",
            [(j, f"C{i}-{j}", ["open", "closed"][j % 2], j * i, "2026-02-01") for j in range(1, 4)],
        )
    connection.commit()
    names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    connection.close()
    assert len(names) == TABLES
    return str(path), names


@pytest.fixture
def wide_role(org, owner, wide_sqlite_path):
    path, names = wide_sqlite_path
    service = Service.objects.create(organization=org, name="wide", engine=Engine.SQLITE, database=path)
    permissions = [
        {"objectName": name, "schema": "main", "path": f"/table/{name}", "actions": ["SELECT"]} for name in names
    ]
    role = Role.objects.create(
        organization=org, service=service, name="Wide analyst", permissions=permissions, created_by=owner
    )
    mcp_enable(role=role)
    role.refresh_from_db()
    org.auto_deploy_read_only = True
    org.save(update_fields=["auto_deploy_read_only"])
    return role


class MeasuredOffline(OfflineProvider):
    """The offline provider, measuring every prompt exactly as the platform hands it over."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.prompts: list[dict] = []

    def complete(self, *, messages, tools=None, **kwargs):
        context = kwargs.get("context") or {}
        self.prompts.append(
            {
                "agent": context.get("agent"),
                "step": context.get("step"),
                "tokens": estimate_tokens(messages, tools),
                "tools": [t.name for t in tools or []],
                "longest_message": max(len(m.content) for m in messages),
            }
        )
        return super().complete(messages=messages, tools=tools, **kwargs)


def _phase_limit(agent: str) -> int:
    return int(settings.AGENT_TOKEN_BUDGET * PHASE_SHARES[AGENT_PHASES[agent]])


def _tokens_by_agent(execution: AgentExecution) -> dict[str, int]:
    spent: dict[str, int] = {}
    for event in execution.events.filter(kind="llm_call"):
        spent[event.agent] = spent.get(event.agent, 0) + event.payload["input_tokens"] + event.payload["output_tokens"]
    return spent


def _assert_deployed(execution: AgentExecution) -> None:
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
    assert endpoint.status == "deployed", endpoint.verification
    rows = endpoint_run(endpoint=endpoint, values={}, from_text=True).body["results"]
    assert rows and {row["region"] for row in rows} == {"EU"}


def test_the_role_of_500_tables_lists_the_fixed_tools_and_meta_tools_not_one_tool_per_table(wide_role):
    from agents.toolbox import McpToolbox

    with McpToolbox(instance=wide_role.mcp_instance) as toolbox:
        names = {t.name for t in toolbox.tools}
        # A client may search with the whole requirement: its function words match nothing.
        found = toolbox.call("search_objects", {"query": REQUIREMENT}).structured
        listing = toolbox.call("search_objects", {}).structured
    assert names >= FIXED_TOOLS
    assert len(names) < 12, sorted(names)
    assert found["objects"][0]["name"] == "customers" and found["total"] < 5, found["total"]
    assert listing["total"] == TABLES and len(listing["objects"]) == 20 and listing["next_offset"] == 20


def test_the_offline_pipeline_on_500_tables_stays_within_its_prompt_and_phase_budgets(wide_role, owner):
    provider = MeasuredOffline()
    execution = execution_submit(user=owner, role=wide_role, requirement=REQUIREMENT, enqueue=False)

    execution_run(execution=execution_claim(execution_id=execution.pk), provider=provider)

    execution.refresh_from_db()
    _assert_deployed(execution)
    assert provider.prompts
    for prompt in provider.prompts:
        assert set(prompt["tools"]) <= FIXED_TOOLS, prompt
        assert prompt["tokens"] <= settings.AGENT_PROMPT_TOKENS, prompt
        assert prompt["tokens"] <= _phase_limit(prompt["agent"]), prompt
    offered = {name for prompt in provider.prompts for name in prompt["tools"]}
    assert offered == FIXED_TOOLS
    for agent in ("security", "documenter"):
        assert all(not p["tools"] for p in provider.prompts if p["agent"] == agent), agent
    for agent, spent in _tokens_by_agent(execution).items():
        assert spent <= _phase_limit(agent), (agent, spent)
    assert execution.performance_metrics["total_tokens"] <= settings.AGENT_TOKEN_BUDGET


def test_the_literal_model_on_500_tables_reaches_a_deployed_endpoint_through_the_worker(wide_role, owner, settings):
    with LiteralServer() as server:
        settings.LLM_PROVIDER = "openai"
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = ""
        settings.LLM_MODEL = MODEL
        settings.LLM_MAX_RETRIES = 0
        execution = execution_submit(user=owner, role=wide_role, requirement=REQUIREMENT, enqueue=False)

        run_execution_task(str(execution.pk))

    execution.refresh_from_db()
    _assert_deployed(execution)
    for body in server.requests:
        offered = {t["function"]["name"] for t in body.get("tools") or []}
        assert offered <= FIXED_TOOLS | {ANSWER_TOOL}
        chars = len(json.dumps(body["messages"])) + len(json.dumps(body.get("tools") or []))
        assert chars / CHARS_PER_TOKEN <= settings.AGENT_PROMPT_TOKENS
    # A search over 500 tables came back as a page, with how many there are, not as the whole catalog.
    results = [m["content"] for body in server.requests for m in body["messages"] if m["role"] == "tool"]
    assert results and max(len(r) for r in results) <= 6100
    for agent, spent in _tokens_by_agent(execution).items():
        assert spent <= _phase_limit(agent), (agent, spent)


def test_a_paused_run_on_500_tables_continues_its_token_budget_when_resumed(wide_role, owner):
    execution = execution_submit(user=owner, role=wide_role, requirement=REQUIREMENT, enqueue=False)

    def pause_after_exploration(kind: str, payload: dict) -> None:
        if kind == "phase" and payload.get("phase") == Phase.EXPLORATION and payload.get("status") == "completed":
            AgentExecution.objects.filter(pk=execution.pk).update(pause_requested=True)

    execution_run(
        execution=execution_claim(execution_id=execution.pk),
        provider=MeasuredOffline(),
        on_progress=pause_after_exploration,
    )
    execution.refresh_from_db()
    assert execution.status == AgentStatus.PAUSED
    spent_before = execution.result["usage"]["total_tokens"]
    assert spent_before > 0
    assert execution.result["budget_starts"] == {Phase.EXPLORATION: 0}
    calls_before = execution.result["usage"]["llm_calls"]

    execution_resume(execution=execution)
    execution_run(execution=execution_claim(execution_id=execution.pk), provider=MeasuredOffline())

    execution.refresh_from_db()
    _assert_deployed(execution)
    usage = execution.result["usage"]
    # The meter went on from what the first attempt spent: every call of both attempts is in it.
    recorded = [e.payload for e in execution.events.filter(kind="llm_call")]
    assert usage["total_tokens"] == sum(c["input_tokens"] + c["output_tokens"] for c in recorded)
    assert usage["llm_calls"] == len(recorded) > calls_before
    assert usage["total_tokens"] > spent_before
    # The phases after the pause counted their shares from the stored total, not from zero.
    assert execution.result["budget_starts"][Phase.ARCHITECTURE] == spent_before
    assert execution.result["phases"][Phase.EXPLORATION]["schema"]["objects"], "exploration was not redone"
    assert execution.children.filter(agent_type="EXPLORER").count() == 1
