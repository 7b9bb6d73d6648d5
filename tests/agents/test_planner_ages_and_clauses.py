"""Ages ('older than a week'), a value joined to its column ('high-priority'), a window said before a negation,
and negated values never offered as the value itself.

A schema of the tests' own; each design passes the platform's checks and compiles.
"""

from __future__ import annotations

import pytest

from agents.planner import PlanningError, plan_requirement
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import interpretation_parse
from endpoints.verification.coverage import coverage_check, shape_check
from endpoints.verification.findings import failed
from endpoints.verification.realization import realization_check
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

KENNEL = schema_of(
    {
        "owners": {
            "columns": {
                "owner_id": "integer",
                "first_name": "string",
                "last_name": "string",
                "city": "string",
                "created_at": "date-time",
            },
            "pk": ["owner_id"],
        },
        "rentals": {
            "columns": {"rental_id": "integer", "owner_id": "integer", "rented_at": "date-time"},
            "pk": ["rental_id"],
            "fks": {"owner_id": "owners.owner_id"},
        },
        "complaints": {
            "columns": {
                "complaint_id": "integer",
                "owner_id": "integer",
                "severity": "string",
                "state": "string",
                "opened_at": "date-time",
                "closed_at": "date-time",
            },
            "pk": ["complaint_id"],
            "fks": {"owner_id": "owners.owner_id"},
            "values": {"severity": ["low", "high"], "state": ["open", "resolved", "closed"]},
        },
    }
)


def _plan(requirement: str):
    return plan_requirement(requirement=requirement, schema=KENNEL).interpretation


def _problems(requirement: str, interp) -> list[str]:
    return design_problems(requirement, interp, schema=KENNEL)


@pytest.mark.parametrize(
    ("requirement", "days"),
    [("Open high-severity complaints older than a week", 7), ("Complaints opened more than 3 days ago", 3)],
)
def test_an_age_keeps_the_rows_from_before_a_rolling_cut_off_on_the_date_they_began(requirement, days):
    interp = _plan(requirement)
    [window] = interp.windows
    assert window.column.column == "opened_at"  # not closed_at: an age runs from when the row began
    assert window.start is None and (window.end.relative.amount, window.end.relative.unit) == (-days, "day")
    assert _problems(requirement, interp) == []


def test_a_value_joined_to_its_column_by_a_hyphen_filters_that_column():
    interp = _plan("Open high-severity complaints older than a week")
    values = {f.column.column: f.value or interp.parameter(f.param).default for f in interp.filters}
    assert values == {"state": "open", "severity": "high"}


@pytest.mark.parametrize(
    ("requirement", "wrong_end"),
    [("Open high-severity complaints older than a week", None), ("Complaints opened more than 3 days ago", -4)],
)
def test_an_age_without_its_window_or_with_another_cut_off_is_caught_by_the_shape_check(requirement, wrong_end):
    interp = _plan(requirement)
    data = interp.model_dump(by_alias=True, exclude_none=True)
    if wrong_end is None:
        data["windows"] = []
    else:
        data["windows"][0]["end"]["relative"]["amount"] = wrong_end
    assert _problems(requirement, interpretation_parse(data))


def test_a_window_said_before_a_negation_dates_the_entity_not_the_rows_that_are_absent():
    requirement = "Owners who signed up this year but never rented anything"
    interp = _plan(requirement)
    [window] = interp.windows
    assert (window.column.entity, window.column.column) == (interp.root.alias, "created_at")
    [absent] = interp.exists
    assert absent.negated and absent.window is None
    assert absent.entities[-1].object == "rentals"
    assert _problems(requirement, interp) == []


def test_a_window_said_after_a_negation_stays_inside_it():
    interp = _plan("Owners who have not rented anything in the last 30 days")
    assert interp.windows == []
    [absent] = interp.exists
    assert absent.window is not None and absent.window.column.column == "rented_at"


def test_a_negated_value_is_never_offered_as_the_value_itself():
    with pytest.raises(PlanningError) as asked:
        _plan("Unresolved complaints per severity")
    offered = [c.mapping for q in asked.value.questions for c in q.choices]
    assert not any(m.get("value") == "resolved" for m in offered)


LEDGER = schema_of(
    {
        "wallets": {
            "columns": {
                "wallet_id": "integer",
                "level": "string",
                "allowance": "number",
                "spent": "number",
                "visits": "integer",
            },
            "pk": ["wallet_id"],
            "values": {"level": ["basic", "silver", "elite"]},
        },
        "cards": {
            "columns": {"card_id": "integer", "cap": "number", "used": "number", "reserved": "number"},
            "pk": ["card_id"],
        },
    }
)


def _ledger_problems(requirement: str, interp) -> list[str]:
    catalog = Catalog(LEDGER)
    interpretation_compile(interp, catalog=catalog, dialect="postgres")
    findings = coverage_check(requirement=requirement, interpretation=interp)
    findings += shape_check(requirement=requirement, interpretation=interp, catalog=catalog)
    return [f.message for f in failed(findings)]


def test_over_their_column_compares_the_only_other_column_of_its_kind_and_values_said_together_are_a_list():
    requirement = "Silver and elite wallets that are over their allowance"
    interp = plan_requirement(requirement=requirement, schema=LEDGER).interpretation
    [compared] = [f for f in interp.filters if f.other is not None]
    assert (compared.column.column, compared.op, compared.other.column) == ("spent", "gt", "allowance")
    [level] = [f for f in interp.filters if f.column.column == "level"]
    assert (level.op, level.values, level.phrase) == ("in", ["silver", "elite"], "Silver and elite")
    assert _ledger_problems(requirement, interp) == []
    sql = interpretation_compile(interp, catalog=Catalog(LEDGER), dialect="postgres").sql
    assert "w.spent > w.allowance" in sql.replace('"', "")


def test_a_comparison_with_a_column_two_others_could_make_is_declined_with_their_names():
    with pytest.raises(PlanningError) as declined:
        plan_requirement(requirement="Cards that are over their cap", schema=LEDGER)
    assert "used" in str(declined.value) and "reserved" in str(declined.value)


def test_the_platform_refuses_two_equalities_on_one_column_and_a_column_comparison_the_sql_lacks():
    requirement = "Silver and elite wallets that are over their allowance"
    interp = plan_requirement(requirement=requirement, schema=LEDGER).interpretation
    data = interp.model_dump(by_alias=True, exclude_none=True)
    level = next(f for f in data["filters"] if f["column"]["column"] == "level")
    data["filters"].remove(level)
    data["filters"] += [
        {"column": level["column"], "op": "eq", "value": "silver", "phrase": "Silver"},
        {"column": level["column"], "op": "eq", "value": "elite", "phrase": "elite"},
    ]
    assert any("holds only one" in p for p in _ledger_problems(requirement, interpretation_parse(data)))
    catalog = Catalog(LEDGER)
    realized = realization_check(
        sql="SELECT * FROM wallets w WHERE w.allowance > w.spent AND w.level IN ('silver', 'elite')",
        dialect="postgres",
        interpretation=interp,
        catalog=catalog,
    )
    assert any("spent" in f.message or "allowance" in f.message for f in failed(realized))


def test_a_money_threshold_several_columns_could_hold_asks_which_column_the_word_before_it_names():
    with pytest.raises(PlanningError) as asked:
        plan_requirement(requirement="Wallets worth more than $1,000", schema=LEDGER)
    [question] = asked.value.questions
    assert {c.mapping["column"] for c in question.choices} == {"allowance", "spent"}
    answer = next(c.mapping for c in question.choices if c.mapping["column"] == "spent")
    interp = plan_requirement(
        requirement="Wallets worth more than $1,000", schema=LEDGER, glossary=[answer]
    ).interpretation
    [compared] = interp.filters
    assert (compared.column.column, compared.op, compared.value) == ("spent", "gt", 1000)
    assert _ledger_problems("Wallets worth more than $1,000", interp) == []


def test_a_verb_of_where_a_row_is_belongs_to_the_location_it_is_in():
    requirement = "Owners living in a given city"
    interp = _plan(requirement)
    [city] = interp.filters
    assert city.column.column == "city" and city.phrase == "living in a given city"
    assert interp.parameter(city.param).required
    assert _problems(requirement, interp) == []


def test_which_row_was_verbed_the_most_counts_the_rows_the_verb_names_along_foreign_keys():
    from .test_planner_negation_lookup import MARINA

    requirement = "Which boat was chartered the most?"
    interp = plan_requirement(requirement=requirement, schema=MARINA).interpretation
    assert {e.object for e in interp.entities} == {"boats", "moorings", "charters"}
    [measure] = interp.measures
    assert measure.func == "count"
    assert interp.order_by[0].measure == measure.id and interp.order_by[0].direction == "desc"
    assert interp.limit.n == 1
    assert {g.column.column for g in interp.group_by} >= {"boat_id"}
    catalog = Catalog(MARINA)
    interpretation_compile(interp, catalog=catalog, dialect="postgres")
    findings = coverage_check(requirement=requirement, interpretation=interp)
    findings += shape_check(requirement=requirement, interpretation=interp, catalog=catalog)
    assert [f.message for f in failed(findings)] == []


def test_a_state_lasting_more_than_n_years_began_before_the_cut_off_but_never_with_a_negation():
    requirement = "Owners who have been with us for more than five years"
    interp = _plan(requirement)
    [window] = interp.windows
    assert window.column.column == "created_at"
    assert window.start is None and (window.end.relative.amount, window.end.relative.unit) == (-5, "year")
    assert _problems(requirement, interp) == []
    # "inactive for more than 30 days" is a lack of activity, not an age: never read as one.
    with pytest.raises(PlanningError):
        _plan("Owners who have been inactive for more than 30 days")


POST = schema_of(
    {
        "couriers": {"columns": {"courier_id": "integer", "company_name": "string"}, "pk": ["courier_id"]},
        "parcels": {
            "columns": {"parcel_id": "integer", "courier_id": "integer", "sent_at": "date-time"},
            "pk": ["parcel_id"],
            "fks": {"courier_id": "couriers.courier_id"},
        },
    }
)


def test_which_row_verbed_the_most_of_a_table_counts_that_tables_rows_per_row_and_both_must_be_tables():
    requirement = "Which courier carried the most parcels?"
    interp = plan_requirement(requirement=requirement, schema=POST).interpretation
    assert interp.root.object == "parcels" or {e.object for e in interp.entities} == {"couriers", "parcels"}
    assert {g.column.column for g in interp.group_by} >= {"courier_id"}
    assert interp.limit.n == 1 and interp.order_by[0].direction == "desc"
    catalog = Catalog(POST)
    findings = coverage_check(requirement=requirement, interpretation=interp)
    findings += shape_check(requirement=requirement, interpretation=interp, catalog=catalog)
    assert [f.message for f in failed(findings)] == []
    with pytest.raises(PlanningError):
        plan_requirement(requirement="Which delivery firm carried the most parcels?", schema=POST)


def test_the_shape_check_refuses_a_count_per_key_of_the_only_table_counted():
    requirement = "Which courier carried the most parcels?"
    interp = interpretation_parse(
        {
            "entities": [{"alias": "p", "object": "parcels", "phrase": "parcels"}],
            "group_by": [{"column": {"entity": "p", "column": "parcel_id"}, "phrase": "courier"}],
            "measures": [{"id": "parcel_count", "func": "count", "phrase": "carried the most"}],
            "order_by": [{"measure": "parcel_count", "direction": "desc", "phrase": "carried the most"}],
            "limit": {"n": 1, "phrase": "courier"},
        }
    )
    problems = [
        f.message for f in failed(shape_check(requirement=requirement, interpretation=interp, catalog=Catalog(POST)))
    ]
    assert any("one row each" in p for p in problems)
