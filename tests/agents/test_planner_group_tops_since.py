"""The top rows within each group ('the best-selling plant in each family') are declined, never ranked over all rows;
no rows since a given date ('members who haven't visited since a given date') asks the caller for the date."""

from __future__ import annotations

import pytest

from agents.planner import plan_requirement
from agents.planner.planner import PlanningError
from endpoints.compiler import Catalog
from endpoints.verification.coverage import shape_check
from endpoints.verification.findings import failed

from .planner_checks import design_problems
from .planner_schemas import HR, schema_of

GARDEN = schema_of(
    {
        "plants": {
            "columns": {"plant_id": "integer", "name": "string", "family": "string"},
            "pk": ["plant_id"],
            "values": {"family": ["roses", "ferns", "herbs"]},
        },
        "plant_sales": {
            "columns": {"sale_id": "integer", "plant_id": "integer", "sold_on": "date", "amount": "number"},
            "pk": ["sale_id"],
            "fks": {"plant_id": "plants.plant_id"},
        },
    }
)


@pytest.mark.parametrize(
    "requirement",
    [
        "The best-selling plant in each family, by sales amount",
        "The top 3 plants of every family by amount",
    ],
)
def test_top_rows_within_each_group_are_declined(requirement):
    with pytest.raises(PlanningError) as error:
        plan_requirement(requirement=requirement, schema=GARDEN)
    assert "within each family" in str(error.value)
    assert "of a given family" in str(error.value)


def test_a_ranking_over_every_row_is_refused_for_top_rows_per_group():
    plan = plan_requirement(requirement="Our best-selling plants by sales amount", schema=GARDEN)
    assert plan.interpretation.order_by and plan.interpretation.limit is None
    findings = failed(
        shape_check(
            requirement="Our best-selling plant in each family, by sales amount",
            interpretation=plan.interpretation,
            catalog=Catalog(GARDEN),
        )
    )
    assert any("within each family" in f.message for f in findings)


def test_one_figure_per_group_is_still_answered():
    plan = plan_requirement(requirement="Average salary in each department", schema=HR)
    assert design_problems("Average salary in each department", plan.interpretation, schema=HR) == []
    assert [m.func for m in plan.interpretation.measures] == ["avg"]


LIBRARY_CARDS = schema_of(
    {
        "members": {"columns": {"member_id": "integer", "name": "string"}, "pk": ["member_id"]},
        "visits": {
            "columns": {"visit_id": "integer", "member_id": "integer", "visited_on": "date"},
            "pk": ["visit_id"],
            "fks": {"member_id": "members.member_id"},
        },
    }
)


def test_no_rows_since_a_given_date_asks_the_caller_for_the_date():
    requirement = "Members who haven't visited since a given date"
    plan = plan_requirement(requirement=requirement, schema=LIBRARY_CARDS)
    interp = plan.interpretation
    assert design_problems(requirement, interp, schema=LIBRARY_CARDS) == []
    (absent,) = interp.exists
    assert absent.negated and absent.window.start.param == "since" and absent.window.end is None
    (since,) = interp.parameters
    assert since.required and since.default is None and since.type == "date"
    assert ":since" in plan.sql and "default" not in plan.parameters["properties"]["since"]


def test_rows_of_a_given_member_since_a_given_date_take_the_date_once():
    requirement = "Visits of a given member since a given date"
    plan = plan_requirement(requirement=requirement, schema=LIBRARY_CARDS)
    interp = plan.interpretation
    assert design_problems(requirement, interp, schema=LIBRARY_CARDS) == []
    assert sorted(p.name for p in interp.parameters) == ["name", "since"]
    (window,) = interp.windows
    assert window.start.param == "since" and window.column.column == "visited_on"
