"""The planner's general shapes on a schema it was not written against: given values, thresholds, counts, recency.

Each design must also pass the platform's own checks (coverage and shapes), and a design missing the
element a phrase demands is caught by them.
"""

from __future__ import annotations

from agents.planner import PlanningError, plan_requirement
from endpoints.interpretation import interpretation_parse
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

LIBRARY = schema_of(
    {
        "regions": {"columns": {"region_id": "integer", "region": "string"}, "pk": ["region_id"]},
        "towns": {
            "columns": {"town_id": "integer", "town": "string", "region_id": "integer"},
            "pk": ["town_id"],
            "fks": {"region_id": "regions.region_id"},
        },
        "members": {
            "columns": {
                "member_no": "integer",
                "first_name": "string",
                "last_name": "string",
                "town_id": "integer",
                "joined_on": "date",
            },
            "pk": ["member_no"],
            "fks": {"town_id": "towns.town_id"},
        },
        "clubs": {"columns": {"club_id": "integer", "name": "string"}, "pk": ["club_id"]},
        "club_members": {
            "columns": {"club_id": "integer", "member_no": "integer"},
            "pk": ["club_id", "member_no"],
            "fks": {"club_id": "clubs.club_id", "member_no": "members.member_no"},
        },
        "loans": {
            "columns": {"loan_id": "integer", "member_no": "integer", "borrowed_at": "date-time", "fee": "number"},
            "pk": ["loan_id"],
            "fks": {"member_no": "members.member_no"},
        },
    }
)


def _plan(requirement: str):
    plan = plan_requirement(requirement=requirement, schema=LIBRARY)
    interp = plan.interpretation
    assert interp is not None
    return interp


def _problems(requirement: str, interp) -> list[str]:
    return design_problems(requirement, interp, schema=LIBRARY)


def _without(interp, **changes):
    data = interp.model_dump(by_alias=True, exclude_none=True)
    data.update(changes)
    return interpretation_parse(data)


def test_a_given_value_two_foreign_keys_away_is_a_required_parameter_joined_many_to_one():
    requirement = "Members of a given region"
    interp = _plan(requirement)
    [only] = interp.filters
    assert interp.entity(only.column.entity).object == "regions" and only.column.column == "region"
    assert only.param == "region" and only.phrase == "a given region"
    parameter = interp.parameter("region")
    assert parameter.required and parameter.default is None
    assert [e.object for e in interp.entities] == ["members", "towns", "regions"]
    assert _problems(requirement, interp) == []


def test_a_given_value_without_its_parameter_is_caught_by_verification():
    requirement = "Members of a given region"
    wrong = _without(_plan(requirement), filters=[], parameters=[])
    assert any("a given region" in p for p in _problems(requirement, wrong))


def test_more_than_n_related_rows_is_a_count_per_entity_with_a_having_condition():
    requirement = "Members who made more than 5 loans"
    interp = _plan(requirement)
    [having] = interp.having
    assert (having.op, having.value, having.phrase) == ("gt", 5, "made more than 5 loans")
    assert interp.root.object == "loans" and [m.func for m in interp.measures] == ["count"]
    assert {g.column.column for g in interp.group_by} >= {"member_no"}
    assert _problems(requirement, interp) == []
    wrong = _without(interp, having=[])
    assert any("more than 5" in p for p in _problems(requirement, wrong))


def test_more_than_n_of_our_rows_living_in_a_place_is_a_count_per_place_up_the_keys():
    requirement = "Towns where more than one of our members lives"
    interp = _plan(requirement)
    [having] = interp.having
    assert (having.op, having.value) == ("gt", 1) and having.phrase.endswith("more than one of our members lives")
    assert interp.root.object == "members" and [m.func for m in interp.measures] == ["count"]
    assert {g.column.column for g in interp.group_by} >= {"town_id"}
    wrong = _without(interp, having=[])
    assert any("more than one" in p for p in _problems(requirement, wrong))
    # Two steps up the keys, with the verb after 'is'.
    interp = _plan("Regions where at least 3 of our members are based")
    [having] = interp.having
    assert (having.op, having.value) == ("gte", 3)
    assert {g.column.column for g in interp.group_by} >= {"region_id"}


def test_a_threshold_with_a_money_unit_compares_the_named_numeric_column():
    requirement = "Loans with a fee above 2 dollars"
    interp = _plan(requirement)
    [only] = interp.filters
    assert (only.column.column, only.op, only.value) == ("fee", "gt", 2)
    assert _problems(requirement, interp) == []
    flipped = _without(interp, filters=[{**only.model_dump(), "op": "lt"}])
    assert any("threshold" in p for p in _problems(requirement, flipped))


def test_most_recent_with_a_number_word_orders_by_the_date_and_keeps_that_many():
    requirement = "The three most recent loans"
    interp = _plan(requirement)
    first = interp.order_by[0]
    assert (first.column.column, first.direction) == ("borrowed_at", "desc")
    assert interp.limit.n == 3
    assert _problems(requirement, interp) == []
    by_key = _without(
        interp, order_by=[{"column": {"entity": interp.root.alias, "column": "loan_id"}, "direction": "desc"}]
    )
    assert any("order by date" in p for p in _problems(requirement, by_key))


def test_most_recent_without_a_number_keeps_every_row():
    interp = _plan("The latest loans")
    assert interp.order_by[0].column.column == "borrowed_at" and interp.limit is None


def test_a_person_found_by_first_and_last_name_takes_both_as_required_parameters():
    requirement = "Find a member by first and last name"
    interp = _plan(requirement)
    assert sorted(f.column.column for f in interp.filters) == ["first_name", "last_name"]
    assert all(p.required and p.default is None for p in interp.parameters)
    assert _problems(requirement, interp) == []


def test_a_percentage_is_not_guessed_without_knowing_how_the_column_stores_it():
    requirement = "Loans with a fee of at least 20%"
    try:
        interp = _plan(requirement)
    except PlanningError as error:
        assert error.questions
        return
    assert not any(f.op in ("gt", "gte") for f in interp.filters)
    assert any("at least 20" in p for p in _problems(requirement, interp))  # so the run asks instead


def test_a_given_value_across_a_link_table_is_an_exists_chain_with_a_required_parameter():
    requirement = "Members of a given club"
    interp = _plan(requirement)
    [related] = interp.exists
    assert not related.negated and [e.object for e in related.entities] == ["club_members", "clubs"]
    [only] = related.filters
    assert (only.column.column, only.param) == ("name", "club")  # a small lookup table is known by its name
    assert interp.parameter("club").required and not interp.filters
    assert _problems(requirement, interp) == []
    assert any("a given club" in p for p in _problems(requirement, _without(interp, exists=[], parameters=[])))


GYMS = schema_of(
    {
        "gyms": {"columns": {"gym_id": "integer", "city": "string"}, "pk": ["gym_id"]},
        "members": {
            "columns": {
                "member_id": "integer",
                "first_name": "string",
                "last_name": "string",
                "gym_id": "integer",
                "active": "integer",
                "paused": "boolean",
            },
            "pk": ["member_id"],
            "fks": {"gym_id": "gyms.gym_id"},
            "values": {"active": [1, 0]},
        },
    }
)


def _flag_filter(requirement: str, glossary: list | None = None):
    plan = plan_requirement(requirement=requirement, schema=GYMS, glossary=glossary)
    assert design_problems(requirement, plan.interpretation, schema=GYMS) == []
    [only] = plan.interpretation.filters
    value = only.value if only.param is None else plan.interpretation.parameter(only.param).default
    return only.column.column, only.op, value


def test_a_yes_no_column_named_before_the_entity_keeps_the_rows_where_it_is_set():
    assert _flag_filter("Active members") == ("active", "eq", 1)
    assert _flag_filter("How many active members each gym has") == ("active", "eq", 1)
    assert _flag_filter("Paused members") == ("paused", "eq", True)
    # The same when the word was defined as the column in the glossary: never every member with the column shown.
    glossary = [{"term": "active", "kind": "column", "object": "public.members", "column": "active"}]
    assert _flag_filter("Active members", glossary) == ("active", "eq", 1)
