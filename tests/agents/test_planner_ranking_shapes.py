"""A number apart from its superlative, a date left empty, the verb of a given row, and what a learned pattern reads."""

from __future__ import annotations

from types import SimpleNamespace

from agents.orchestrator import success_results
from agents.planner import plan_requirement
from agents.planner.intent import read_phrases
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.verification.coverage import coverage_check, shape_check
from endpoints.verification.findings import failed

from .planner_schemas import schema_of
from .test_planner_shapes import LIBRARY, _problems, _without

SHIPS = schema_of(
    {
        "voyages": {
            "columns": {
                "voyage_id": "integer",
                "departed_on": "date",
                "returned_on": "date",
                "harbour": "string",
            },
            "pk": ["voyage_id"],
        },
    }
)


DINER = schema_of(
    {
        "guests": {
            "columns": {"guest_no": "integer", "first_name": "string", "last_name": "string"},
            "pk": ["guest_no"],
        },
        "dishes": {"columns": {"dish_id": "integer", "dish": "string", "spicy": "boolean"}, "pk": ["dish_id"]},
        "tabs": {
            "columns": {"tab_id": "integer", "guest_no": "integer", "opened_at": "date-time", "amount": "number"},
            "pk": ["tab_id"],
            "fks": {"guest_no": "guests.guest_no"},
        },
        "tab_lines": {
            "columns": {"line_id": "integer", "tab_id": "integer", "dish_id": "integer", "servings": "integer"},
            "pk": ["line_id"],
            "fks": {"tab_id": "tabs.tab_id", "dish_id": "dishes.dish_id"},
        },
    }
)


def _checked(requirement: str, interp, schema) -> list[str]:
    from endpoints.compiler import Catalog, interpretation_compile
    from endpoints.verification.coverage import coverage_check, shape_check
    from endpoints.verification.findings import failed

    catalog = Catalog(schema)
    interpretation_compile(interp, catalog=catalog, dialect="postgres")
    findings = coverage_check(requirement=requirement, interpretation=interp)
    findings += shape_check(requirement=requirement, interpretation=interp, catalog=catalog)
    return [f.message for f in failed(findings)]


def _plan(requirement: str, schema=LIBRARY):
    return plan_requirement(requirement=requirement, schema=schema).interpretation


def test_a_number_apart_from_its_superlative_is_the_limit_of_a_ranking_on_the_money_spent():
    requirement = "The three guests who spent the most, with their names"
    interp = _plan(requirement, DINER)
    [measure] = interp.measures
    assert (measure.func, measure.column.column) == ("sum", "amount")
    assert interp.limit.n == 3 and interp.limit.phrase == "three"
    [order] = interp.order_by
    assert order.measure == measure.id and order.direction == "desc" and order.phrase == "spent the most"
    assert {g.column.column for g in interp.group_by} == {"guest_no", "first_name", "last_name"}
    assert _checked(requirement, interp, DINER) == []
    assert any("three" in p for p in _checked(requirement, _without(interp, limit=None, parameters=[]), DINER))
    upside_down = _without(interp, order_by=[{**order.model_dump(), "direction": "asc"}])
    assert any("most" in p for p in _checked(requirement, upside_down, DINER))


def test_a_negated_verb_that_names_a_date_of_the_row_is_that_date_left_empty():
    requirement = "Voyages that haven't returned yet"
    interp = _plan(requirement, SHIPS)
    [empty] = interp.filters
    assert (empty.column.column, empty.op, empty.phrase) == ("returned_on", "is_null", "haven't returned yet")
    assert _checked(requirement, interp, SHIPS) == []
    assert any("haven't" in p for p in _checked(requirement, _without(interp, filters=[]), SHIPS))


def test_the_verb_after_a_given_row_belongs_to_its_parameter():
    requirement = "Loans a given member made in the last 30 days"
    interp = _plan(requirement)
    [given] = interp.filters
    assert given.phrase == "a given member made" and interp.parameter(given.param).required
    assert _problems(requirement, interp) == []
    requirement = "Every dish a given guest has ordered"
    interp = _plan(requirement, DINER)
    [related] = interp.exists
    assert not related.negated and related.phrase == "a given guest has ordered"
    assert [e.object for e in related.entities] == ["tab_lines", "tabs", "guests"]
    assert _checked(requirement, interp, DINER) == []


def test_a_learned_pattern_names_the_tables_its_conditions_read():
    interp = plan_requirement(requirement="Members who have never made a loan", schema=LIBRARY).interpretation
    execution = SimpleNamespace(
        result={"phases": {"exploration": {"schema": {"objects": [{"name": "members"}, {"name": "loans"}]}}}},
        business_requirement="Members who have never made a loan",
    )
    endpoint = SimpleNamespace(
        interpretation=interp.model_dump(by_alias=True, exclude_none=True),
        slug="members-without-loans",
        description="",
        parameters={},
        sql="SELECT 1",
        role=SimpleNamespace(service=SimpleNamespace(engine="postgresql")),
        verdict="",
    )
    results = success_results(execution=execution, endpoint=endpoint)
    assert results["pattern"]["objects"] == ["loans", "members"]
    assert {o["name"] for o in results["exploration"]["objects"]} == {"members", "loans"}


def test_which_single_group_brought_in_the_most_money_is_one_row_ranked_by_the_measure():
    requirement = "Which sales channel brought in the most revenue last quarter"
    schema = schema_of(
        {
            "tickets": {
                "columns": {"ticket_id": "integer", "channel": "string", "price": "number", "sold_at": "date-time"},
                "pk": ["ticket_id"],
            },
            # "sales channel" qualifies the noun: it never names this view
            "ticket_sales": {"columns": {"month": "date", "sales": "number"}, "kind": "view"},
        }
    )
    interp = plan_requirement(requirement=requirement, schema=schema).interpretation
    assert [g.column.column for g in interp.group_by] == ["channel"]
    [measure] = interp.measures
    assert (measure.func, measure.column.column) == ("sum", "price")
    assert interp.order_by[0].measure == measure.id and interp.order_by[0].direction == "desc"
    assert interp.limit.n == 1
    catalog = Catalog(schema)
    interpretation_compile(interp, catalog=catalog, dialect="postgres")
    findings = coverage_check(requirement=requirement, interpretation=interp)
    findings += shape_check(requirement=requirement, interpretation=interp, catalog=catalog)
    assert [f.message for f in failed(findings)] == []
    assert read_phrases("Which channels brought in the most revenue last quarter").top_n is None  # every one, not one
