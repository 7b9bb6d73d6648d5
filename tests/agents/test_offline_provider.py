"""The offline provider answers each agent deterministically, in exactly the contracts every provider must meet."""

from __future__ import annotations

import pytest

from agents.contracts import CONTRACTS, contract_validate
from agents.providers.base import LLMError, LLMProvider, Message, ToolCall, ToolSpec
from agents.providers.offline import OfflineProvider
from endpoints.compiler import Catalog
from endpoints.verification.checks import design_verify
from endpoints.verification.findings import failed

from .planner_fixtures import build_retail_sqlite, distinct_samples, introspect, run

FIXED = [
    ToolSpec(name, name, {"type": "object", "properties": {}})
    for name in ("search_objects", "describe_object", "sample_rows")
]


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    path = build_retail_sqlite(tmp_path_factory.mktemp("offline") / "retail.db")
    url = f"sqlite:///{path}"
    schema = introspect(url)
    return url, schema, distinct_samples(url, schema)


def _ask(provider, agent, **context):
    answer = provider.complete(
        messages=[Message(role="user", content=f"{agent}: {context.get('requirement', '')}")],
        context={"agent": agent, "dialect": "sqlite", **context},
    )
    contract_validate(CONTRACTS[agent], answer.structured)  # whatever it says, it says in the contract
    return answer


def _design(retail, requirement, **extra):
    _, schema, samples = retail
    return _ask(OfflineProvider(), "architect", requirement=requirement, schema=schema, samples=samples, **extra)


def test_offline_provider_satisfies_the_provider_interface():
    assert isinstance(OfflineProvider(), LLMProvider)


def test_the_explorer_searches_then_describes_what_the_words_name_then_stops(retail):
    _, schema, _ = retail
    provider = OfflineProvider()
    requirement = "customers with no activity in the last 90 days"
    messages = [Message(role="user", content=requirement)]
    context = {"agent": "explorer", "requirement": requirement, "schema": {"objects": []}, "samples": {}}

    first = provider.complete(messages=messages, tools=FIXED, context=context)
    assert [c.name for c in first.tool_calls] == ["search_objects"]
    assert "customers" in first.tool_calls[0].arguments["query"]
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0

    catalog = [{"name": o["name"], "matched_columns": []} for o in schema["objects"]]
    messages.append(Message(role="assistant", tool_calls=first.tool_calls))
    reflection = provider.complete(messages=messages, tools=FIXED, context={**context, "step": "reflect"})
    contract_validate(CONTRACTS["reflection"], reflection.structured)
    assert reflection.structured["goal_achieved"] is False

    # What is absent ("no activity") may live in an object the words do not name: every object is listed first.
    listing = provider.complete(messages=messages, tools=FIXED, context={**context, "catalog": catalog[:1]})
    assert [(c.name, "query" in c.arguments) for c in listing.tool_calls] == [("search_objects", False)]
    messages.append(Message(role="assistant", tool_calls=listing.tool_calls))
    second = provider.complete(messages=messages, tools=FIXED, context={**context, "catalog": catalog})
    described = {c.arguments["object"] for c in second.tool_calls if c.name == "describe_object"}
    assert {"customers", "events"} <= described

    # Once everything is described and nothing is left to probe, it stops and names what matters.
    done = {**context, "catalog": catalog, "schema": schema}
    messages.append(Message(role="assistant", tool_calls=second.tool_calls))
    messages.append(Message(role="assistant", tool_calls=(ToolCall("x", "sample_rows", {"object": "customers"}),)))
    final = provider.complete(messages=messages, tools=FIXED, context={**done, "step": "synthesize"})
    contract_validate(CONTRACTS["explorer"], final.structured)
    assert "customers" in {o["object"] for o in final.structured["relevant_objects"]}


def test_the_architects_design_is_the_platforms_own_sql_and_passes_every_check(retail):
    url, schema, _ = retail
    requirement = "Number of customers by region"
    design = _design(retail, requirement).structured
    assert design["path"] and design["interpretation"]["entities"][0]["object"].endswith("customers")
    findings = design_verify(
        requirement=requirement,
        interpretation=contract_validate(CONTRACTS["architect"], design).interpretation,
        sql=design["sql"],
        catalog=Catalog(schema),
        dialect="sqlite",
    )
    assert failed(findings) == []
    expected = {r["region"]: r["n"] for r in run(url, "SELECT region, COUNT(*) AS n FROM customers GROUP BY region")}
    got = {r["region"]: r["customer_count"] for r in run(url, design["sql"])}
    assert got == expected


def test_the_architect_asks_instead_of_guessing_what_a_word_means(retail):
    design = _design(retail, "Customers whose favourite colour is teal").structured
    assert design["questions"]
    assert {"favourite", "colour", "teal"} & {q["phrase"] for q in design["questions"]}


def test_a_requirement_it_cannot_design_is_declined_in_plain_words(retail):
    with pytest.raises(LLMError) as error:
        _design(retail, "Delete every customer")
    text = str(error.value).lower()
    assert "language model" not in text and "architect" not in text and "offline" not in text


def test_security_echoes_the_platforms_findings(retail):
    approved = _ask(OfflineProvider(), "security", requirement="x", design={}, automated_issues=[])
    assert approved.structured["approved"] is True
    rejected = _ask(
        OfflineProvider(), "security", requirement="x", design={}, automated_issues=["it would return phone"]
    )
    assert rejected.structured["approved"] is False


def test_the_implementer_keeps_the_designs_verified_sql(retail):
    design = _design(retail, "Number of customers by region").structured
    answer = _ask(OfflineProvider(), "implementer", design=design)
    assert answer.structured["sql"] == design["sql"]


def test_tester_and_documenter_describe_the_endpoint(retail):
    design = _design(retail, "Top 5 customers by number of orders").structured
    cases = _ask(OfflineProvider(), "tester", design=design, implementation={"sql": design["sql"]}).structured["cases"]
    assert any(c["expect"].get("max_rows") == 5 for c in cases)
    docs = _ask(OfflineProvider(), "documenter", design=design, meaning="Customers ranked.", test_results={})
    assert docs.structured["markdown"].startswith("# ")


def test_an_unknown_agent_is_a_clear_error():
    with pytest.raises(LLMError, match="context\\['agent'\\]"):
        OfflineProvider().complete(messages=[Message(role="user", content="x")], context={"agent": "poet"})


def test_the_explorers_progress_counts_the_objects_it_described(retail):
    _, schema, _ = retail
    context = {"agent": "explorer", "step": "reflect", "requirement": "customers", "schema": schema}
    answer = OfflineProvider().complete(messages=[Message(role="user", content="x")], tools=FIXED, context=context)
    assert answer.structured["progress"] == f"described {len(schema['objects'])} objects"


def _pattern(requirement: str, objects: list[str]) -> dict:
    content = {"requirement": requirement, "objects": objects, "shape": ["list"]}
    return {"id": "m1", "type": "SUCCESS_PATTERN", "content": content, "similarity": 0.9}


def test_a_learned_pattern_about_the_same_thing_is_described_at_once_and_another_one_is_searched_past():
    provider = OfflineProvider()
    requirement = "Customers who placed more than 20 orders"
    context = {"agent": "explorer", "requirement": requirement, "schema": {"objects": []}, "samples": {}}
    same = {**context, "memories": [_pattern("Customers who have never placed an order", ["customers", "orders"])]}
    calls = provider.complete(messages=[Message(role="user", content=requirement)], tools=FIXED, context=same)
    assert [c.arguments.get("object") for c in calls.tool_calls] == ["customers", "orders"]
    other = {**context, "memories": [_pattern("Products priced above 50 dollars", ["products"])]}
    calls = provider.complete(messages=[Message(role="user", content=requirement)], tools=FIXED, context=other)
    assert [c.name for c in calls.tool_calls] == ["search_objects"]


def test_the_explorer_describes_the_table_a_verb_names():
    from agents.providers.offline import _candidates

    context = {
        "requirement": "Members who rented boats",
        "catalog": [{"name": n} for n in ("aisles", "boats", "members", "rentals")],
        "schema": {"objects": []},
    }
    assert _candidates(context) == ["boats", "members", "rentals"]


def test_the_explorer_describes_the_parents_on_the_path_to_a_named_table_before_tables_a_column_matches():
    from agents.providers.offline import _candidates

    described = [
        {"name": "members", "foreign_keys": [{"ref_table": "homes"}], "referenced_by": []},
        {"name": "regions", "foreign_keys": [], "referenced_by": []},
    ]
    context = {
        "requirement": "Members of a given region",
        # the search lists the two named tables and tables whose columns match, not the homes between them
        "catalog": [{"name": "members"}, {"name": "regions"}]
        + [{"name": f"dues_{n}", "matched_columns": ["member_id"]} for n in range(8)],
        "schema": {"objects": described},
    }
    chosen = _candidates(context)
    assert chosen[:3] == ["members", "regions", "homes"]
    assert len(chosen) == 8
