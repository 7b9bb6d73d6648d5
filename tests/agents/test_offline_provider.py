"""The offline provider answers each agent deterministically, with tool calls, structured output and usage."""

from __future__ import annotations

import pytest

from agents.providers.base import LLMError, LLMProvider, Message, ToolSpec
from agents.providers.offline import OfflineProvider

from .planner_fixtures import build_retail_sqlite, distinct_samples, introspect, run


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    path = build_retail_sqlite(tmp_path_factory.mktemp("offline") / "retail.db")
    url = f"sqlite:///{path}"
    schema = introspect(url)
    return url, schema, distinct_samples(url, schema)


def _tools(schema):
    specs = []
    for obj in schema["objects"]:
        specs.append(ToolSpec(f"query_{obj['name']}", f"Query {obj['name']}", {"type": "object", "properties": {}}))
        specs.append(ToolSpec(f"analyze_{obj['name']}_schema", "Schema", {"type": "object", "properties": {}}))
    return specs


def _ask(provider, agent, **context):
    return provider.complete(
        messages=[Message(role="user", content=f"{agent}: {context.get('requirement', '')}")],
        context={"agent": agent, **context},
        response_schema={"type": "object"},
    )


def test_offline_provider_satisfies_the_provider_interface():
    assert isinstance(OfflineProvider(), LLMProvider)


def test_explorer_analyses_then_samples_the_relevant_tables_and_then_stops(retail):
    _, schema, _ = retail
    provider = OfflineProvider()
    tools = _tools(schema)
    requirement = "customers with no activity in the last 90 days"
    messages = [Message(role="user", content=requirement)]
    context = {"agent": "explorer", "requirement": requirement}

    first = provider.complete(messages=messages, tools=tools, context=context)
    names = [c.name for c in first.tool_calls]
    assert "analyze_customers_schema" in names and "analyze_events_schema" in names
    assert all(n.startswith("analyze_") for n in names)
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0

    messages.append(Message(role="assistant", tool_calls=first.tool_calls))
    reflection = provider.complete(messages=messages, tools=tools, context={**context, "step": "reflect"})
    assert reflection.structured["goal_achieved"] is False

    second = provider.complete(messages=messages, tools=tools, context=context)
    assert {c.name for c in second.tool_calls} >= {"query_customers", "query_events"}
    assert all(c.arguments == {"limit": 5} for c in second.tool_calls)

    messages.append(Message(role="assistant", tool_calls=second.tool_calls))
    done = provider.complete(messages=messages, tools=tools, context={**context, "step": "reflect"})
    assert done.structured["goal_achieved"] is True
    final = provider.complete(messages=messages, tools=tools, context=context)
    assert final.tool_calls == () and final.structured["goal_achieved"] is True
    assert "events" in [o["name"] for o in final.structured["relevant_objects"]]


def test_architect_designs_and_the_sql_returns_the_right_rows(retail):
    url, schema, samples = retail
    answer = _ask(
        OfflineProvider(), "architect", requirement="number of tickets per priority", schema=schema, samples=samples
    )
    design = answer.structured
    assert design["shape"] == ["aggregate"] and answer.structured["thoughts"]
    defaults = {n: s["default"] for n, s in design["parameters"]["properties"].items()}
    got = [(r["priority"], r["ticket_count"]) for r in run(url, design["sql"], defaults)]
    expected = [tuple(r.values()) for r in run(url, "SELECT priority, COUNT(*) FROM tickets GROUP BY 1 ORDER BY 1")]
    assert got == expected


def test_architect_refuses_with_an_llm_needed_message(retail):
    _, schema, _ = retail
    with pytest.raises(LLMError) as caught:
        _ask(OfflineProvider(), "architect", requirement="forecast next quarter's revenue", schema=schema)
    assert "an endpoint only reads data as it is" in str(caught.value) and caught.value.retryable is False


def test_security_approves_a_planned_design_and_rejects_an_unbounded_pii_one(retail):
    _, schema, samples = retail
    provider = OfflineProvider()
    design = _ask(provider, "architect", requirement="customers in the EU", schema=schema, samples=samples)
    plan = design.structured
    review = _ask(provider, "security", requirement="customers in the EU", plan=plan)
    assert review.structured["approved"] is True

    risky = {
        **plan,
        "sql": "SELECT id, email FROM customers WHERE region = 'EU'",
        "response_columns": [{"name": "id", "json_type": "integer"}, {"name": "email", "json_type": "string"}],
    }
    review = _ask(provider, "security", requirement="customers in the EU", plan=risky)
    assert review.structured["approved"] is False
    rules = {i.split(":")[0] for i in review.structured["issues"]}
    assert rules >= {"bounded", "parameters_bound", "pii_columns"}

    grants = [{"objectName": "customers", "schema": "main", "actions": ["SELECT"], "columns": {"deny": ["country"]}}]
    review = _ask(provider, "security", requirement="customers in the EU", plan=plan, grants=grants)
    assert review.structured["approved"] is False
    assert [i.split(":")[0] for i in review.structured["issues"]] == ["denied_columns"]


def test_implementer_fix_round_replans_without_a_failing_column(retail):
    _, schema, _samples = retail
    provider = OfflineProvider()
    plan = _ask(provider, "architect", requirement="orders with customer name", schema=schema).structured
    first = _ask(provider, "implementer", plan=plan)
    assert first.structured["sql"] == plan["sql"] and first.structured["changes"] == []
    fixed = _ask(
        provider,
        "implementer",
        plan=plan,
        requirement="orders with customer name",
        schema=schema,
        test_failures=[{"name": "defaults", "message": "no such column: total"}, {"message": "too many rows"}],
    )
    assert "total" not in [c["name"] for c in fixed.structured["response_columns"]]
    assert fixed.structured["parameters"]["properties"]["top_n"]["default"] < 100
    assert len(fixed.structured["changes"]) == 2


def test_tester_and_documenter_describe_the_endpoint(retail):
    _, schema, samples = retail
    provider = OfflineProvider()
    plan = _ask(
        provider, "architect", requirement="orders with status shipped", schema=schema, samples=samples
    ).structured
    cases = _ask(
        provider, "tester", design=plan, implementation={"sql": plan["sql"], "parameters": plan["parameters"]}
    ).structured["cases"]
    by_name = {c["name"]: c for c in cases}
    assert by_name["top_n=1 returns at most one row"]["expect"]["max_rows"] == 1
    assert any(c["expect"]["status"] == 400 for c in cases)
    assert any(c["params"].get("status") not in (None, "shipped") for c in cases)  # another enum value

    docs = _ask(provider, "documenter", plan=plan, base_url="https://nectar.test/api")
    markdown = docs.structured["markdown"]
    assert markdown == docs.text
    assert "curl" in markdown and "httpx.get" in markdown and "`status`" in markdown
    assert "https://nectar.test/api/orders-with-status-shipped" in markdown


def test_memory_reuse_takes_fewer_architect_steps(retail):
    _, schema, samples = retail
    provider = OfflineProvider()
    first = _ask(provider, "architect", requirement="tickets with priority high", schema=schema, samples=samples)
    from agents.planner import plan_requirement

    content = plan_requirement(
        requirement="tickets with priority high", schema=schema, samples=samples, dialect="sqlite"
    ).memory_content()
    second = _ask(
        provider,
        "architect",
        requirement="tickets with priority low",
        schema=schema,
        samples=samples,
        memories=[{"id": 7, "type": "API_PATTERN", "content": content}],
    )
    assert second.structured["reused_memory_id"] == "7"
    assert second.structured["steps"] < first.structured["steps"]


def test_an_unknown_agent_is_a_clear_error():
    with pytest.raises(LLMError, match="context\\['agent'\\]"):
        OfflineProvider().complete(messages=[Message(role="user", content="hi")], context={})


def test_the_explorers_progress_counts_objects_between_none_and_all(retail):
    import re

    _, schema, _ = retail
    provider = OfflineProvider()
    tools = _tools(schema)
    requirement = "customers with no activity in the last 90 days"
    messages = [Message(role="user", content=requirement)]
    context = {"agent": "explorer", "requirement": requirement}
    counts = []
    for turn in range(4):
        if turn:
            step = provider.complete(messages=messages, tools=tools, context=context)
            messages.append(Message(role="assistant", tool_calls=step.tool_calls))
        reflection = provider.complete(messages=messages, tools=tools, context={**context, "step": "reflect"})
        done, total = map(
            int, re.fullmatch(r"explored (\d+) of (\d+) relevant objects", reflection.structured["progress"]).groups()
        )
        counts.append((done, total))
    assert all(0 <= done <= total for done, total in counts)
    # Nothing called yet, then schemas (not fully explored), then samples: every object explored.
    assert counts[0][0] == 0 and counts[1][0] < counts[1][1] and counts[2][0] == counts[2][1]
