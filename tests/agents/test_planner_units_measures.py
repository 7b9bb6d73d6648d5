"""Quantities in a unit ('longer than 2 hours'), percentages ('at least 15%') and measures computed from a line's
columns ('unit_price * qty * (1 - rebate)'), on schemas the planner was not written against.

Every design passes the platform's own checks; the questions carry the comparison each answer implies.
"""

from __future__ import annotations

import pytest

from agents.planner import PlanningError, plan_requirement
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import interpretation_parse
from learning.glossary import mapping_parse
from learning.services import LearningInputError
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

STUDIO = schema_of(
    {
        "recordings": {
            "columns": {"recording_id": "integer", "title": "string", "runtime": "integer", "genre": "string"},
            "pk": ["recording_id"],
            "values": {"genre": ["jazz", "folk", "ambient"]},
        },
        "podcasts": {
            "columns": {"podcast_id": "integer", "name": "string", "duration_minutes": "integer"},
            "pk": ["podcast_id"],
        },
        "parcels": {
            "columns": {"parcel_id": "integer", "label": "string", "weight": "number"},
            "pk": ["parcel_id"],
        },
    }
)

SHOP = schema_of(
    {
        "invoices": {
            "columns": {"invoice_id": "integer", "issued_on": "date", "client_code": "string"},
            "pk": ["invoice_id"],
        },
        "invoice_lines": {
            "columns": {
                "line_id": "integer",
                "invoice_id": "integer",
                "unit_price": "number",
                "qty": "integer",
                "rebate": "number",
            },
            "pk": ["line_id"],
            "fks": {"invoice_id": "invoices.invoice_id"},
        },
    }
)


def _asked(requirement: str, schema: dict, glossary: list | None = None) -> dict:
    with pytest.raises(PlanningError) as raised:
        plan_requirement(requirement=requirement, schema=schema, glossary=glossary)
    return {q.id: q for q in raised.value.questions}


def _plan(requirement: str, schema: dict, glossary: list | None = None, samples: dict | None = None):
    plan = plan_requirement(requirement=requirement, schema=schema, glossary=glossary, samples=samples)
    assert design_problems(requirement, plan.interpretation, schema=schema) == []
    return plan


def _filters(plan) -> list[tuple[str, str, object]]:
    return [(f.column.column, f.op, f.value) for f in plan.interpretation.filters]


def test_a_quantity_in_hours_on_a_column_without_a_unit_asks_the_unit_with_the_comparison_each_implies():
    question = _asked("Recordings longer than 2 hours", STUDIO)["unit_runtime"]
    assert question.text == "'runtime': in which unit is it measured?"
    mappings = {c.mapping["unit"]: c.mapping for c in question.choices}
    assert list(mappings) == ["minute", "hour", "second"]
    assert mappings["minute"] == {
        "term": "runtime",
        "kind": "column",
        "object": "recordings",
        "column": "runtime",
        "unit": "minute",
        "op": "gt",
        "value": 120,
    }
    assert (mappings["hour"]["value"], mappings["second"]["value"]) == (2, 7200)
    mapping_parse(mappings["minute"])  # the answer is a glossary mapping


def test_the_answered_unit_converts_the_next_quantity_with_no_question():
    minutes = {"term": "runtime", "kind": "column", "object": "recordings", "column": "runtime", "unit": "minute"}
    plan = _plan("Recordings longer than 2 hours", STUDIO, glossary=[minutes])
    assert _filters(plan) == [("runtime", "gt", 120)]
    plan = _plan("Recordings shorter than 90 seconds", STUDIO, glossary=[minutes])
    assert _filters(plan) == [("runtime", "lt", 1.5)]
    sql = interpretation_compile(plan.interpretation, catalog=Catalog(STUDIO), dialect="sqlite").sql
    assert "runtime < 1.5" in sql


def test_a_column_whose_name_states_its_unit_needs_no_question():
    plan = _plan("Podcasts longer than 2 hours", STUDIO)
    assert _filters(plan) == [("duration_minutes", "gt", 120)]


def test_a_weight_in_kilograms_asks_among_units_of_mass():
    question = _asked("Parcels heavier than 2 kg", STUDIO)["unit_weight"]
    assert [(c.mapping["unit"], c.mapping["value"]) for c in question.choices] == [
        ("kilogram", 2),
        ("gram", 2000),
        ("pound", 4.409245),
    ]


def test_an_age_in_days_is_still_a_window_not_a_quantity():
    plan = plan_requirement(requirement="Invoices issued more than 3 days ago", schema=SHOP)
    assert plan.interpretation.filters == []
    assert plan.interpretation.windows[0].end is not None


def test_a_percentage_on_a_column_of_fractions_is_a_fraction():
    samples = {"invoice_lines": {"rebate": [0.0, 0.05, 0.15, 0.25]}}
    plan = _plan("Invoice lines with a rebate of at least 15%", SHOP, samples=samples)
    assert _filters(plan) == [("rebate", "gte", 0.15)]


def test_a_percentage_on_a_column_holding_percents_is_the_number_itself():
    samples = {"invoice_lines": {"rebate": [0, 5, 15, 25]}}
    plan = _plan("Invoice lines with a rebate of at least 15%", SHOP, samples=samples)
    assert _filters(plan) == [("rebate", "gte", 15)]


def test_a_percentage_nothing_says_how_the_column_holds_is_asked_and_the_answer_is_remembered():
    question = _asked("Invoice lines with a rebate of at least 15%", SHOP)["scale_rebate"]
    assert [(c.mapping["unit"], c.mapping["value"]) for c in question.choices] == [("fraction", 0.15), ("percent", 15)]
    fraction = question.choices[0].mapping
    plan = _plan("Invoice lines with a rebate below 5%", SHOP, glossary=[fraction])
    assert _filters(plan) == [("rebate", "lt", 0.05)]


def test_a_money_word_on_lines_with_price_quantity_and_discount_offers_the_line_amount():
    question = _asked("Revenue per invoice", SHOP)["measure"]
    expressions = [c.mapping.get("expression") for c in question.choices]
    assert expressions[:3] == [
        "unit_price * qty * (1 - rebate)",
        "unit_price * qty * (1 - rebate / 100)",
        "unit_price * qty",
    ]
    mapping_parse(question.choices[0].mapping)


def test_a_line_amount_in_the_glossary_is_summed_and_compiled_on_every_dialect():
    revenue = {
        "term": "revenue",
        "kind": "measure",
        "func": "sum",
        "object": "invoice_lines",
        "column": "unit_price",
        "expression": "unit_price * qty * (1 - rebate)",
    }
    plan = _plan("Total revenue per month", SHOP, glossary=[revenue])
    measure = plan.interpretation.measures[0]
    assert (measure.func, measure.expression) == ("sum", "unit_price * qty * (1 - rebate)")
    assert "SUM(il.unit_price * il.qty * (1 - il.rebate))" in plan.sql.replace("\n", " ")
    for dialect, wanted in (
        ("postgres", "il.unit_price * il.qty * (1 - il.rebate)"),
        ("sqlite", "il.unit_price * il.qty * (1 - il.rebate)"),
        ("mysql", "il.unit_price * il.qty * (1 - il.rebate)"),
    ):
        sql = interpretation_compile(plan.interpretation, catalog=Catalog(SHOP), dialect=dialect).sql
        assert wanted in sql


def test_postgresql_reads_floating_point_columns_of_an_expression_as_numeric():
    schema = schema_of(SHOP_TABLES_WITH_REAL)
    interp = interpretation_parse(
        {
            "entities": [{"alias": "l", "object": "invoice_lines"}],
            "measures": [
                {
                    "id": "revenue",
                    "func": "sum",
                    "column": {"entity": "l", "column": "unit_price"},
                    "expression": "unit_price * qty * (1 - rebate) / qty",
                }
            ],
        }
    )
    for line in schema["objects"][0]["columns"]:
        if line["name"] in ("unit_price", "rebate"):
            line.update(type="REAL", format=None)
    postgres = interpretation_compile(interp, catalog=Catalog(schema), dialect="postgres").sql
    assert (
        "CAST(CAST(l.unit_price AS numeric) * l.qty * (1 - CAST(l.rebate AS numeric)) AS numeric) / l.qty" in postgres
    )
    sqlite = interpretation_compile(interp, catalog=Catalog(schema), dialect="sqlite").sql
    assert "CAST(l.unit_price * l.qty * (1 - l.rebate) AS REAL) / l.qty" in sqlite


SHOP_TABLES_WITH_REAL = {
    "invoice_lines": {
        "columns": {"line_id": "integer", "unit_price": "number", "qty": "integer", "rebate": "number"},
        "pk": ["line_id"],
    }
}


@pytest.mark.parametrize(
    "expression",
    ["unit_price; DROP TABLE invoices", "SUM(unit_price)", "unit_price || 'x'", "l.unit_price * qty", "unit_price > 1"],
)
def test_an_expression_is_only_arithmetic_of_the_row_s_columns(expression):
    with pytest.raises(LearningInputError):
        mapping_parse(
            {
                "kind": "measure",
                "func": "sum",
                "object": "invoice_lines",
                "column": "unit_price",
                "expression": expression,
            }
        )
    with pytest.raises(ValueError):
        interpretation_parse(
            {
                "entities": [{"alias": "l", "object": "invoice_lines"}],
                "measures": [
                    {
                        "id": "x",
                        "func": "sum",
                        "column": {"entity": "l", "column": "unit_price"},
                        "expression": expression,
                    }
                ],
            }
        )


def test_a_ranking_adjective_orders_every_group_by_the_measure():
    revenue = {
        "term": "revenue",
        "kind": "measure",
        "func": "sum",
        "object": "invoice_lines",
        "column": "unit_price",
        "expression": "unit_price * qty",
    }
    plan = _plan("Our best-selling clients by revenue", CLIENTS, glossary=[revenue])
    interp = plan.interpretation
    assert [g.column.column for g in interp.group_by][:1] == ["client_id"]
    assert (interp.order_by[0].measure, interp.order_by[0].direction) == ("revenue", "desc")
    assert interp.limit is None


CLIENTS = schema_of(
    {
        "clients": {"columns": {"client_id": "integer", "name": "string"}, "pk": ["client_id"]},
        "invoices": {
            "columns": {"invoice_id": "integer", "client_id": "integer", "issued_on": "date"},
            "pk": ["invoice_id"],
            "fks": {"client_id": "clients.client_id"},
        },
        "invoice_lines": {
            "columns": {"line_id": "integer", "invoice_id": "integer", "unit_price": "number", "qty": "integer"},
            "pk": ["line_id"],
            "fks": {"invoice_id": "invoices.invoice_id"},
        },
    }
)


CATALOGUE = schema_of(
    {
        "articles": {
            "columns": {"article_id": "integer", "title": "string", "list_price": "number", "unit_cost": "number"},
            "pk": ["article_id"],
        }
    }
)
MARGIN = {
    "term": "margin",
    "kind": "formula",
    "object": "articles",
    "column": "list_price",
    "expression": "(list_price - unit_cost) / list_price",
}


def test_a_margin_below_a_percentage_asks_how_the_margin_is_computed_with_each_comparison():
    question = _asked("Articles with a margin below 25%", CATALOGUE)["formula"]
    assert question.text == "'margin': how is it computed?"
    assert [(c.mapping["expression"], c.mapping["op"], c.mapping["value"]) for c in question.choices] == [
        ("(list_price - unit_cost) / list_price", "lt", 0.25),
        ("(list_price - unit_cost) / unit_cost", "lt", 0.25),
    ]
    mapping_parse(question.choices[0].mapping)


def test_a_margin_the_glossary_defines_is_compared_as_a_share_on_every_dialect():
    plan = _plan("Articles with a margin of at least 40%", CATALOGUE, glossary=[MARGIN])
    (f,) = plan.interpretation.filters
    assert (f.expression, f.op, f.value) == ("(list_price - unit_cost) / list_price", "gte", 0.4)
    for dialect, wanted in (
        ("postgres", "CAST((a.list_price - a.unit_cost) AS numeric) / a.list_price >= 0.4"),
        ("sqlite", "CAST((a.list_price - a.unit_cost) AS REAL) / a.list_price >= 0.4"),
        ("mysql", "(a.list_price - a.unit_cost) / a.list_price >= 0.4"),
    ):
        sql = interpretation_compile(plan.interpretation, catalog=Catalog(CATALOGUE), dialect=dialect).sql
        assert wanted in sql


def test_a_percentage_after_a_word_that_names_no_column_or_margin_is_not_guessed():
    with pytest.raises(PlanningError) as raised:
        plan_requirement(requirement="Articles with a popularity below 25%", schema=CATALOGUE)
    assert not any(q.id == "formula" for q in raised.value.questions)


BOOKINGS = schema_of(
    {
        "bookings": {
            "columns": {"booking_id": "integer", "booked_on": "date", "venue": "string", "source": "string"},
            "pk": ["booking_id"],
            "values": {"venue": ["Lisbon", "Porto"], "source": ["app", "desk", "partner"]},
        }
    }
)


def test_a_share_as_a_percentage_counts_the_value_s_rows_among_every_row_of_the_group():
    requirement = "Share of bookings made on app this year, per venue, as a percentage"
    plan = _plan(requirement, BOOKINGS)
    interp = plan.interpretation
    (measure,) = interp.measures
    assert measure.share and measure.func == "count"
    assert [(f.column.column, f.phrase) for f in measure.filters] == [("source", "made on app")]
    assert interp.filters == []  # the window applies to both counts, the value only to the share
    assert [g.column.column for g in interp.group_by] == ["venue"]
    assert "100.0 * SUM(CASE WHEN b.source = :source THEN 1 ELSE 0 END) / COUNT(*)" in plan.sql.replace("\n", " ")
    for dialect in ("postgres", "sqlite", "mysql"):
        sql = interpretation_compile(interp, catalog=Catalog(BOOKINGS), dialect=dialect).sql
        assert "100.0 * SUM(CASE WHEN" in sql and "/ COUNT(*)" in sql


def test_a_share_with_no_value_to_count_is_declined():
    with pytest.raises(PlanningError):
        plan_requirement(requirement="Share of bookings per venue, as a percentage", schema=BOOKINGS)


def test_a_percentage_of_an_amount_column_is_not_read_as_a_comparison_with_it():
    schema = schema_of({"accounts": {"columns": {"account_id": "integer", "balance": "number"}, "pk": ["account_id"]}})
    with pytest.raises(PlanningError) as raised:
        plan_requirement(requirement="Accounts with a balance above 20%", schema=schema)
    assert not any(q.id.startswith("scale_") for q in raised.value.questions)
