"""Rows related through a key's own name, a second instance of one table, link tables, and the same row twice.

The schemas are ones the planner was not written against (a school, a company's people); every design must
pass the platform's own checks, and the compiled SQL is run on SQLite with a few rows to show the rows it
returns are the ones meant.
"""

from __future__ import annotations

import sqlite3

import pytest

from agents.planner import PlanningError, plan_requirement
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import interpretation_parse
from tests.agents.planner_checks import design_problems

from .planner_schemas import HR, SCHOOL, TRAILS, schema_of


def _plan(requirement: str, schema: dict = SCHOOL):
    plan = plan_requirement(requirement=requirement, schema=schema)
    assert plan.interpretation is not None
    assert design_problems(requirement, plan.interpretation, schema=schema) == []
    return plan


def _rows(plan, schema: dict, script: str, params: dict | None = None, *, shape: str = "primary") -> list[tuple]:
    """The rows the plan's interpretation, compiled for SQLite, returns over tables made by `script`."""
    sql = interpretation_compile(plan.interpretation, catalog=Catalog(schema), dialect="sqlite", shape=shape).sql
    db = sqlite3.connect(":memory:")
    db.executescript(script)
    return db.execute(sql, params or {}).fetchall()


PEOPLE_ROWS = """
CREATE TABLE departments (department_id INTEGER PRIMARY KEY, name TEXT, location TEXT);
CREATE TABLE employees (employee_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
  department_id INTEGER, manager_id INTEGER, hired_on DATE, salary NUMERIC, grade TEXT);
INSERT INTO employees (employee_id, first_name, last_name, manager_id) VALUES
  (1, 'Ada', 'Boss', NULL), (2, 'Bo', 'Lee', 1), (3, 'Cy', 'Ng', 1), (4, 'Di', 'Ox', 2);
"""


def test_the_manager_an_employee_reports_to_is_a_second_instance_of_the_same_table():
    requirement = "Employees who report to a manager, with the name of the manager they report to"
    plan = _plan(requirement, HR)
    interp = plan.interpretation
    employees, manager = interp.entities
    assert employees.object == manager.object == "employees"
    assert manager.join is not None and manager.join.to == employees.alias
    assert manager.join.on == [("employee_id", "manager_id")] and manager.join.kind == "inner"
    assert "report to a manager" in manager.phrase
    labels = {s.label for s in interp.select if s.column.entity == manager.alias}
    assert labels == {"manager_first_name", "manager_last_name"}
    assert "self-reference" in plan.shape
    rows = _rows(plan, HR, PEOPLE_ROWS)
    names = {(r[0], r[-2], r[-1]) for r in rows}
    assert names == {(2, "Ada", "Boss"), (3, "Ada", "Boss"), (4, "Bo", "Lee")}  # Ada reports to no one
    # Without the manager's names the platform's checks refuse the design.
    data = interp.model_dump(by_alias=True, exclude_none=True)
    data["select"] = [s for s in data["select"] if s["column"]["entity"] != manager.alias]
    assert design_problems(requirement, interpretation_parse(data), schema=HR)


def test_a_key_about_reporting_is_named_by_the_general_words_for_the_one_above():
    plan = _plan("Teachers who report to a manager, with the name of the manager")
    manager = plan.interpretation.entities[1]
    assert manager.object == "teachers" and manager.join.on == [("teacher_id", "supervisor_id")]
    plan = _plan("Teachers who report to a supervisor, with the name of the supervisor they report to")
    assert {s.label for s in plan.interpretation.select} >= {"supervisor_first_name", "supervisor_last_name"}


def test_the_people_who_report_to_each_manager_are_counted_per_manager():
    plan = _plan("Managers and how many people report to each of them", HR)
    interp = plan.interpretation
    _rows_counted, manager = interp.entities
    assert manager.join.on == [("employee_id", "manager_id")]
    assert {g.column.entity for g in interp.group_by} == {manager.alias}
    assert [m.func for m in interp.measures] == ["count"]
    result = _rows(plan, HR, PEOPLE_ROWS)
    assert sorted((r[0], r[-1]) for r in result) == [(1, 2), (2, 1)]


SCHOOL_ROWS = """
CREATE TABLE countries (country_id INTEGER PRIMARY KEY, country_name TEXT);
CREATE TABLE cities (city_id INTEGER PRIMARY KEY, city_name TEXT, country_id INTEGER);
CREATE TABLE teachers (teacher_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
  supervisor_id INTEGER, hired_on DATE);
CREATE TABLE campuses (campus_id INTEGER PRIMARY KEY, campus_name TEXT, dean_teacher_id INTEGER, city_id INTEGER);
CREATE TABLE courses (course_id INTEGER PRIMARY KEY, title TEXT, campus_id INTEGER, credits INTEGER);
CREATE TABLE course_teachers (teacher_id INTEGER, course_id INTEGER, assigned_on DATE,
  PRIMARY KEY (teacher_id, course_id));
CREATE TABLE students (student_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT);
CREATE TABLE sections (section_id INTEGER PRIMARY KEY, course_id INTEGER, term TEXT);
CREATE TABLE enrolments (enrolment_id INTEGER PRIMARY KEY, student_id INTEGER, section_id INTEGER, enrolled_on DATE);
INSERT INTO cities VALUES (1, 'Porto', NULL), (2, 'Ghent', NULL);
INSERT INTO teachers (teacher_id, first_name, last_name, supervisor_id) VALUES
  (1, 'Ana', 'Reis', NULL), (2, 'Ben', 'Vos', 1), (3, 'Cid', 'Lima', 1);
INSERT INTO campuses VALUES (1, 'North', 1, 1), (2, 'Riverside', 2, 2);
INSERT INTO courses VALUES (1, 'Algebra', 1, 5), (2, 'Botany', 2, 5), (3, 'Chemistry', 2, 5);
INSERT INTO course_teachers (teacher_id, course_id) VALUES (1, 1), (2, 2), (2, 3), (3, 1);
INSERT INTO students VALUES (1, 'Eli', 'Mar'), (2, 'Fay', 'Noor'), (3, 'Gus', 'Orr');
INSERT INTO sections VALUES (1, 1, 'spring'), (2, 1, 'autumn'), (3, 2, 'spring');
INSERT INTO enrolments (enrolment_id, student_id, section_id) VALUES
  (1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 1), (5, 2, 3), (6, 3, 1), (7, 3, 2);
"""


def test_a_link_table_counts_the_far_rows_of_each_entity():
    plan = _plan("How many courses each teacher teaches, with their names")
    interp = plan.interpretation
    assert interp.root.object == "course_teachers" and interp.root.phrase == "teaches"
    [measure] = interp.measures
    assert measure.func == "count_distinct" and measure.column.column == "course_id"
    assert [g.column.column for g in interp.group_by] == ["teacher_id", "first_name", "last_name"]
    assert sorted((r[0], r[-1]) for r in _rows(plan, SCHOOL, SCHOOL_ROWS)) == [(1, 1), (2, 2), (3, 1)]


def test_the_entities_with_the_most_far_rows_through_a_link_table_are_counted_ranked_and_cut():
    requirement = "Which two teachers teach the most courses?"
    plan = _plan(requirement)
    interp = plan.interpretation
    assert interp.root.object == "course_teachers" and interp.root.phrase == "teach"
    [measure] = interp.measures
    assert measure.func == "count_distinct" and measure.column.column == "course_id"
    assert [g.column.column for g in interp.group_by] == ["teacher_id", "first_name", "last_name"]
    assert interp.limit.n == 2 and interp.order_by[0].direction == "desc"
    # Ben teaches two courses, Ana and Cid one each: Ben first.
    rows = _rows(plan, SCHOOL, SCHOOL_ROWS)
    assert len(rows) == 2 and (rows[0][0], rows[0][-1]) == (2, 2)
    # The number is what "two" asks for: cut at another number, or not cut, the checks refuse the design.
    data = interp.model_dump(by_alias=True, exclude_none=True)
    data["limit"]["n"] = 3
    assert design_problems(requirement, interpretation_parse(data), schema=SCHOOL)
    del data["limit"]
    assert design_problems(requirement, interpretation_parse(data), schema=SCHOOL)


def test_the_one_entity_with_the_most_far_rows_through_a_link_table_is_one_row():
    plan = _plan("Which teacher teaches the most courses?")
    assert plan.interpretation.limit.n == 1
    assert [r[0] for r in _rows(plan, SCHOOL, SCHOOL_ROWS)] == [2]


@pytest.mark.parametrize(
    "requirement",
    [
        "Which teachers teach the most courses?",  # how many is not said
        "Which two teachers teach the fewest courses?",  # a teacher with no course would not be counted
    ],
)
def test_a_ranking_through_a_link_table_that_the_words_do_not_settle_is_declined(requirement):
    with pytest.raises(PlanningError):
        plan_requirement(requirement=requirement, schema=SCHOOL)


TRAIL_ROWS = """
CREATE TABLE trails (trail_id INTEGER PRIMARY KEY, name TEXT, difficulty TEXT, length_km NUMERIC, opened_on DATE);
CREATE TABLE tags (tag_id INTEGER PRIMARY KEY, label TEXT);
CREATE TABLE trail_tags (trail_id INTEGER, tag_id INTEGER, PRIMARY KEY (trail_id, tag_id));
INSERT INTO trails (trail_id, name, length_km) VALUES
  (1, 'Cliff Walk', 12), (2, 'Dune Loop', 4), (3, 'Pine Path', 30), (4, 'Bay Ridge', 18), (5, 'Cove Lane', NULL);
INSERT INTO tags VALUES (1, 'Coastal'), (2, 'Forest');
INSERT INTO trail_tags VALUES (1, 1), (2, 1), (3, 2), (4, 1), (4, 2), (5, 1);
"""


def test_a_value_beyond_a_link_table_keeps_the_rows_linked_to_it():
    plan = _plan("Trails with the Coastal tag", TRAILS)
    [exists] = plan.interpretation.exists
    [condition] = exists.filters
    assert (condition.column.column, condition.op, condition.value) == ("label", "eq", "Coastal")
    assert sorted(r[0] for r in _rows(plan, TRAILS, TRAIL_ROWS)) == [1, 2, 4, 5]


def test_the_n_longest_rows_linked_to_a_value_are_ordered_by_their_length_and_cut():
    requirement = "The two longest trails with the Coastal tag"
    plan = _plan(requirement, TRAILS)
    interp = plan.interpretation
    [order] = interp.order_by
    assert (order.column.column, order.direction, interp.limit.n) == ("length_km", "desc", 2)
    assert "length_km" in {s.column.column for s in interp.select}
    # Bay Ridge (18 km) and Cliff Walk (12 km); Pine Path is not coastal, Cove Lane has no length.
    assert [r[0] for r in _rows(plan, TRAILS, TRAIL_ROWS)] == [4, 1]
    shortest = _plan("The two shortest trails with the Coastal tag", TRAILS)
    assert [r[0] for r in _rows(shortest, TRAILS, TRAIL_ROWS)] == [2, 1]
    # Cut at another number, or ordered the other way, the checks refuse the design.
    data = interp.model_dump(by_alias=True, exclude_none=True)
    data["limit"]["n"] = 3
    assert design_problems(requirement, interpretation_parse(data), schema=TRAILS)
    data["limit"]["n"], data["order_by"][0]["direction"] = 2, "asc"
    assert design_problems(requirement, interpretation_parse(data), schema=TRAILS)


def test_the_longest_rows_without_a_number_are_declined():
    with pytest.raises(PlanningError):
        plan_requirement(requirement="The longest trails with the Coastal tag", schema=TRAILS)


def test_a_given_value_beyond_a_link_table_is_an_exists_condition_along_the_whole_path():
    requirement = "Teachers who teach a course on a given campus"
    plan = _plan(requirement)
    interp = plan.interpretation
    [exists] = interp.exists
    assert [e.object for e in exists.entities] == ["course_teachers", "courses", "campuses"]
    [condition] = exists.filters
    assert condition.column.column == "campus_name" and condition.param == "campus"
    assert interp.parameter("campus").required
    # Ben teaches two courses on Riverside: he is listed once.
    assert [r[0] for r in _rows(plan, SCHOOL, SCHOOL_ROWS, {"campus": "Riverside"})] == [2]
    assert [r[0] for r in _rows(plan, SCHOOL, SCHOOL_ROWS, {"campus": "North"})] == [1, 3]
    without = interp.model_dump(by_alias=True, exclude_none=True)
    without["exists"][0]["filters"], without["parameters"] = [], []
    assert design_problems(requirement, interpretation_parse(without), schema=SCHOOL)


def test_the_same_related_row_more_than_once_counts_rows_per_entity_and_row():
    requirement = "Students who enrolled in the same course more than once"
    plan = _plan(requirement)
    [exists] = plan.interpretation.exists
    assert exists.repeated is not None
    assert [c.column for c in exists.repeated.per] == ["course_id"]
    assert (exists.repeated.op, exists.repeated.value) == ("gt", 1)
    # Eli took Algebra twice (and Botany once), Gus Algebra twice, Fay each course once.
    assert [r[0] for r in _rows(plan, SCHOOL, SCHOOL_ROWS)] == [1, 3]
    assert [r[0] for r in _rows(plan, SCHOOL, SCHOOL_ROWS, shape="alternate")] == [1, 3]
    # The count condition is what "more than once" asks for: without it the checks refuse the design.
    data = plan.interpretation.model_dump(by_alias=True, exclude_none=True)
    del data["exists"][0]["repeated"]
    assert design_problems(requirement, interpretation_parse(data), schema=SCHOOL)


def test_a_parent_the_key_names_and_a_place_further_up_are_joined_for_each_row():
    plan = _plan("Each campus's dean and the city the campus is in")
    interp = plan.interpretation
    objects = [e.object for e in interp.entities]
    assert objects == ["campuses", "teachers", "cities"]
    labels = [s.label or s.column.column for s in interp.select]
    assert {"dean_first_name", "dean_last_name", "city_name"} <= set(labels)
    rows = _rows(plan, SCHOOL, SCHOOL_ROWS)
    assert [(r[0], r[-3], r[-1]) for r in rows] == [(1, "Ana", "Porto"), (2, "Ben", "Ghent")]


def test_a_word_for_the_one_above_is_not_guessed_where_no_key_says_it():
    schema = schema_of(
        {
            "depots": {"columns": {"depot_id": "integer", "city": "string"}, "pk": ["depot_id"]},
            "drivers": {
                "columns": {
                    "driver_id": "integer",
                    "first_name": "string",
                    "last_name": "string",
                    "depot_id": "integer",
                },
                "pk": ["driver_id"],
                "fks": {"depot_id": "depots.depot_id"},
            },
        }
    )
    with pytest.raises(PlanningError):
        plan_requirement(requirement="Drivers who report to a manager, with the name of the manager", schema=schema)


def test_two_link_tables_between_the_same_tables_are_not_chosen_between():
    tables = {
        "teachers": {"columns": {"teacher_id": "integer", "full_name": "string"}, "pk": ["teacher_id"]},
        "courses": {"columns": {"course_id": "integer", "title": "string"}, "pk": ["course_id"]},
        "course_teachers": {
            "columns": {"teacher_id": "integer", "course_id": "integer"},
            "pk": ["teacher_id", "course_id"],
            "fks": {"teacher_id": "teachers.teacher_id", "course_id": "courses.course_id"},
        },
        "course_assistants": {
            "columns": {"teacher_id": "integer", "course_id": "integer"},
            "pk": ["teacher_id", "course_id"],
            "fks": {"teacher_id": "teachers.teacher_id", "course_id": "courses.course_id"},
        },
    }
    with pytest.raises(PlanningError):
        plan_requirement(requirement="How many courses each teacher covers", schema=schema_of(tables))


def test_rows_per_a_link_table_are_declined_not_grouped_per_pair_of_linked_rows():
    # "per course teacher" is per teacher through course_teachers, not per (teacher, course) pair, and not
    # per dean along another path to teachers.
    with pytest.raises(PlanningError):
        plan_requirement(requirement="Enrolments per course teacher in the last 30 days", schema=SCHOOL)
