"""What each phase's prompt asks for is exactly what its contract and the endpoint layer accept."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.base import AgentRuntime
from agents.contracts import (
    CONTRACTS,
    ContractError,
    Design,
    Expect,
    contract_schema,
    contract_validate,
    json_from_text,
)
from agents.specialists import AGENTS
from endpoints.interpretation import RESERVED_PARAMETERS
from endpoints.models import endpoint_slug_validator

CONTEXT = {
    "requirement": "Customers of a given country with their names",
    "schema": {"objects": []},
    "samples": {},
    "exploration": {
        "schema": {
            "objects": [
                {
                    "schema": "main",
                    "name": "customers",
                    "kind": "table",
                    "columns": [{"name": "id", "type": "INTEGER"}, {"name": "country", "type": "TEXT"}],
                    "foreign_keys": [],
                }
            ]
        },
        "samples": {"customers": {"country": ["DE", "FR"]}},
    },
    "design": {"path": "customers-by-country", "sql": "SELECT 1", "interpretation": {}, "description": "d"},
    "implementation": {"sql": "SELECT 1"},
    "memories": [],
    "glossary": [],
    "feedback": [],
}


def _prompts(name: str) -> str:
    runtime = AgentRuntime(orchestration=None, provider=None, toolbox=None, dialect="postgres")
    agent = AGENTS[name](runtime)
    return "\n".join(
        [agent.system_prompt(CONTEXT), agent.task_prompt("goal", CONTEXT), agent.synthesis_prompt(CONTEXT)]
    )


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_no_prompt_asks_for_something_the_endpoint_layer_refuses(name):
    text = _prompts(name)
    assert ":limit" not in text
    assert "snake_case" not in text.lower()


def test_the_explorer_reads_learned_patterns_without_their_designs_and_the_architect_with_them():
    design = '{"entities": [{"alias": "c", "object": "main.customers"}], "select": []}'
    pattern = (
        "GET customers-by-country: Customers of a given country. Reads main.customers.\n\n```json\n" + design + "\n```"
    )
    context = {**CONTEXT, "memories": [{"type": "API_PATTERN", "content": pattern}]}
    runtime = AgentRuntime(orchestration=None, provider=None, toolbox=None, dialect="postgres")
    explorer = AGENTS["explorer"](runtime).system_prompt(context)
    architect = AGENTS["architect"](runtime).system_prompt(context)
    assert "Reads main.customers." in explorer
    assert design not in explorer
    assert design in architect


def test_the_architect_prompt_states_the_rules_its_contract_enforces():
    text = _prompts("architect")
    assert "kebab-case" in text
    for name in RESERVED_PARAMETERS:
        assert name in text
    schema = contract_schema(Design)
    assert schema["properties"]["path"]["anyOf"][0]["pattern"] == endpoint_slug_validator.regex.pattern
    assert schema["additionalProperties"] is False


def test_the_tester_prompt_names_exactly_the_expectations_the_contract_accepts():
    text = _prompts("tester")
    for key in Expect.model_fields:
        assert key.split("_")[0] in text
    with pytest.raises(ValidationError):
        Expect.model_validate({"status": 200, "row_count": 3})


def test_a_design_written_as_the_prompt_asks_is_accepted():
    design = {
        "path": "customers-by-country",
        "description": "Customers of one country, with their names.",
        "interpretation": {
            "entities": [{"alias": "c", "object": "customers", "phrase": "Customers"}],
            "select": [{"column": {"entity": "c", "column": "name"}, "phrase": "names"}],
            "filters": [
                {"column": {"entity": "c", "column": "country"}, "param": "country", "phrase": "a given country"}
            ],
            "parameters": [{"name": "country", "type": "string", "required": True, "phrase": "a given country"}],
        },
        "sql": "SELECT c.name FROM customers c WHERE c.country = :country ORDER BY c.id",
    }
    assert contract_validate(Design, design).interpretation.parameters[0].name == "country"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"path": "customers_by_country"}, "path"),
        ({"interpretation": {"entities": [{"alias": "c", "object": "x"}], "parameters": [{"name": "limit"}]}}, "limit"),
        ({"surprise": 1}, "surprise"),
        ({"sql": None}, "sql"),
    ],
)
def test_every_departure_from_the_contract_is_named_for_the_repair_turn(change, problem):
    design = {"path": "ok", "interpretation": {"entities": [{"alias": "c", "object": "x"}]}, "sql": "SELECT 1"}
    with pytest.raises(ContractError) as error:
        contract_validate(Design, {**design, **change})
    assert any(problem in p for p in error.value.problems)
    assert "Answer again" in error.value.repair_prompt()


def test_questions_instead_of_a_design_are_a_valid_answer():
    answer = {
        "questions": [
            {
                "id": "live",
                "phrase": "live",
                "text": "'live': which column?",
                "kind": "column",
                "choices": [{"id": "city", "label": "customers.city", "mapping": {"kind": "column"}}],
            }
        ]
    }
    assert contract_validate(Design, answer).questions[0].id == "live"


def test_json_is_read_out_of_a_models_prose():
    assert json_from_text('Here it is:\n```json\n{"approved": true, "issues": []}\n```') == {
        "approved": True,
        "issues": [],
    }
    with pytest.raises(ContractError):
        json_from_text("I approve.")


def test_every_phase_has_a_contract_with_no_extra_keys():
    for name, model in CONTRACTS.items():
        assert contract_schema(model)["additionalProperties"] is False, name
