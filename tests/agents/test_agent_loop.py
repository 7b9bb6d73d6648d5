"""BaseAgent's think -> act -> observe -> reflect loop, driven by a scripted provider over real MCP tools."""

from __future__ import annotations

import pytest

from agents.base import AgentFailed, AgentRuntime
from agents.models import AgentExecution, AgentStatus, ExecutionEvent
from agents.providers import Completion, MeteredProvider, ToolCall, Usage, UsageMeter
from agents.providers.accounting import parse_prices
from agents.specialists import ExplorerAgent
from agents.toolbox import McpToolbox
from mcpservers.models import ToolCall as ToolCallLog
from mcpservers.services import mcp_enable
from roles.models import Role

pytestmark = pytest.mark.django_db(transaction=True)


class ScriptedProvider:
    """Answers each call with the next scripted completion; records what it was asked."""

    name = "scripted"
    model = "scripted-1"

    def __init__(self, script, *, tokens_per_call: int = 10):
        self.script = list(script)
        self.calls: list[dict] = []
        self.tokens = tokens_per_call

    def complete(self, *, messages, tools=None, response_schema=None, temperature=0.2, max_tokens=2000, context=None):
        self.calls.append({"step": (context or {}).get("step"), "tools": [t.name for t in tools or []]})
        item = self.script.pop(0) if self.script else {"structured": {"goal_achieved": True, "progress": "done"}}
        calls = tuple(ToolCall(id=f"call-{len(self.calls)}", name=n, arguments=a) for n, a in item.get("tools", []))
        return Completion(
            text=item.get("text", ""),
            tool_calls=calls,
            structured=item.get("structured"),
            usage=Usage(self.tokens, self.tokens),
            model=self.model,
            stop_reason="end_turn",
        )


def think(text, *tools):
    return {"text": text, "tools": list(tools)}


def reflect(done, progress="looked"):
    return {"structured": {"goal_achieved": done, "progress": progress}}


FINAL = {"structured": {"relevant_objects": [{"object": "customers", "reason": "who"}], "summary": "ok"}}
DESCRIBE = ("describe_object", {"object": "customers"})


def _run(role, owner, provider, *, max_iterations=10, budget=None):
    orchestration = AgentExecution.objects.create(
        business_requirement="customers in the EU",
        organization=role.organization,
        user=owner,
        role=role,
        status=AgentStatus.RUNNING,
    )
    meter = UsageMeter(prices=parse_prices(""))
    metered = MeteredProvider(provider, meter, token_budget=budget)
    with McpToolbox(instance=role.mcp_instance) as toolbox:
        runtime = AgentRuntime(
            orchestration=orchestration,
            provider=metered,
            toolbox=toolbox,
            dialect="sqlite",
            max_iterations=max_iterations,
        )
        context = {"requirement": "customers in the EU", "schema": {"objects": []}, "samples": {}}
        agent = ExplorerAgent(runtime)
        try:
            output = agent.execute("Find database objects relevant to: customers in the EU", context)
        except AgentFailed as exc:
            output = exc
    record = AgentExecution.objects.get(parent=orchestration)
    return output, record, orchestration, agent


def test_reflection_that_the_goal_is_achieved_ends_the_loop(analyst_role, owner):
    provider = ScriptedProvider([think("describe customers", DESCRIBE), reflect(True), FINAL])
    output, record, orchestration, agent = _run(analyst_role, owner, provider)
    assert agent.steps == 1
    assert [c["step"] for c in provider.calls] == ["think", "reflect", "synthesize"]
    assert [o["name"] for o in output["schema"]["objects"]] == ["customers"]
    assert "phone" not in [c["name"] for c in output["schema"]["objects"][0]["columns"]], "denied column stays hidden"
    assert record.status == AgentStatus.COMPLETED
    assert [t["tool"] for t in record.tools_invoked] == ["describe_object"]
    assert [t["step"] for t in record.thought_process] == ["think", "reflect", "synthesize"]
    assert record.discoveries[0]["object"] == "main.customers"
    assert record.mcp_servers_used == ["nectar-Sales analyst"]
    kinds = list(ExecutionEvent.objects.filter(execution=orchestration).values_list("kind", flat=True))
    assert kinds == ["thought", "tool_call", "tool_result", "thought", "thought"]
    seqs = list(ExecutionEvent.objects.filter(execution=orchestration).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert ToolCallLog.objects.filter(tool="describe_object", outcome="ok").count() == 1


def test_the_loop_stops_at_max_iterations(analyst_role, owner):
    script = []
    for _ in range(3):
        script += [think("look again", ("sample_rows", {"object": "customers", "limit": 2})), reflect(False)]
    provider = ScriptedProvider([*script, FINAL])
    output, record, _, agent = _run(analyst_role, owner, provider, max_iterations=3)
    assert agent.steps == 3
    assert [t["tool"] for t in record.tools_invoked[:3]] == ["sample_rows"] * 3
    assert all(t["ok"] for t in record.tools_invoked[:3])
    # The model named customers without describing it: the explorer describes it before handing over.
    assert record.tools_invoked[3]["tool"] == "describe_object"
    assert [c["step"] for c in provider.calls][-1] == "synthesize"
    assert record.status == AgentStatus.COMPLETED
    assert output["summary"] == "ok"


def test_the_token_budget_stops_the_agent_with_a_clear_reason(analyst_role, owner):
    script = [think("look", ("sample_rows", {"object": "customers", "limit": 1})), reflect(False)] * 10
    provider = ScriptedProvider(script, tokens_per_call=400)
    output, record, _, _agent = _run(analyst_role, owner, provider, budget=2000)
    assert isinstance(output, AgentFailed)
    assert "token budget" in str(output)
    assert record.status == AgentStatus.FAILED
    assert "token budget" in record.status_reason


def test_tool_errors_are_observed_and_the_agent_recovers(analyst_role, owner):
    provider = ScriptedProvider(
        [
            think(
                "try a filter",
                (
                    "sample_rows",
                    {"object": "customers", "filters": [{"column": "no_such_column", "op": "eq", "value": 1}]},
                ),
            ),
            reflect(False, "that column does not exist"),
            think("describe instead", DESCRIBE),
            reflect(True),
            FINAL,
        ]
    )
    output, record, orchestration, agent = _run(analyst_role, owner, provider)
    assert agent.steps == 2
    first, second = record.tools_invoked
    assert first["ok"] is False and first["error"]
    assert second["ok"] is True
    assert output["schema"]["objects"][0]["name"] == "customers"
    result_events = ExecutionEvent.objects.filter(execution=orchestration, kind="tool_result").order_by("seq")
    assert [e.payload["ok"] for e in result_events] == [False, True]


def test_the_explorer_is_offered_and_may_call_read_only_tools_only(org, owner, demo_service):
    role = Role.objects.create(
        organization=org,
        service=demo_service,
        name="support",
        permissions=[
            {
                "objectName": "support_tickets",
                "schema": "main",
                "path": "/table/support_tickets",
                "actions": ["SELECT", "INSERT", "UPDATE", "DELETE"],
            }
        ],
        mcp_enabled=True,
    )
    mcp_enable(role=role)
    role.refresh_from_db()
    provider = ScriptedProvider(
        [
            think("write something", ("insert_support_tickets", {"rows": [{"subject": "x"}]})),
            reflect(True),
            {"structured": {"relevant_objects": [], "summary": "none"}},
        ]
    )
    _output, record, _, _ = _run(role, owner, provider)
    offered = provider.calls[0]["tools"]
    assert sorted(offered) == ["describe_object", "sample_rows", "search_objects"]
    assert "insert_support_tickets" not in offered
    assert record.tools_invoked[0]["ok"] is False
    assert "not available to this agent" in record.tools_invoked[0]["error"]
    assert not ToolCallLog.objects.filter(tool="insert_support_tickets").exists()


def test_an_answer_in_the_wrong_form_goes_back_for_repair_and_then_passes(analyst_role, owner):
    provider = ScriptedProvider(
        [
            think("describe customers", DESCRIBE),
            {"text": "I think the goal is achieved"},  # no JSON at all
            {"text": '```json\n{"goal_achieved": true, "progress": "described"}\n```'},
            {"structured": {"relevant_objects": [{"name": "customers"}], "summary": "ok"}},  # wrong key
            FINAL,
        ]
    )
    output, _record, orchestration, _agent = _run(analyst_role, owner, provider)
    assert output["summary"] == "ok"
    repairs = ExecutionEvent.objects.filter(execution=orchestration, kind="repair")
    assert [e.payload["step"] for e in repairs] == ["reflect", "synthesize"]
    assert any("relevant_objects.0.object" in p for p in repairs[1].payload["problems"])


def test_an_answer_that_stays_wrong_fails_the_agent_saying_why(analyst_role, owner):
    bad = {"structured": {"relevant_objects": "all of them"}}
    provider = ScriptedProvider([think("describe", DESCRIBE), reflect(True), bad, bad, bad])
    output, record, _, _ = _run(analyst_role, owner, provider)
    assert isinstance(output, AgentFailed)
    assert "wrong form" in str(output) and "relevant_objects" in str(output)
    assert record.status == AgentStatus.FAILED


class RecordingProvider(ScriptedProvider):
    def complete(self, *, messages, **kwargs):
        self.seen = [(m.role, m.content) for m in messages]
        return super().complete(messages=messages, **kwargs)


def test_each_reflection_guides_the_next_step(analyst_role, owner):
    provider = RecordingProvider(
        [
            think("describe", DESCRIBE),
            {"structured": {"goal_achieved": False, "progress": "saw customers", "next_steps": ["sample the region"]}},
            think("sample", ("sample_rows", {"object": "customers", "limit": 1})),
        ]
    )
    calls = []
    original = provider.complete

    def spy(**kwargs):
        calls.append([m.content for m in kwargs["messages"]])
        return original(**kwargs)

    provider.complete = spy
    _run(analyst_role, owner, provider, max_iterations=2)
    second_think = calls[2]
    assert any("sample the region" in text for text in second_think)
