"""Every design carries its interpretation; what the planner cannot resolve it asks, with choices from the data."""

from __future__ import annotations

import re

import pytest

from agents.planner import PlanningError, plan_requirement
from agents.planner.planner import requirement_questions
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import interpretation_parse
from endpoints.verification.coverage import coverage_check, shape_check
from endpoints.verification.findings import failed

from .planner_schemas import CLINIC, HR, LOGISTICS, schema_of


def _plan(schema, requirement, **kwargs):
    return plan_requirement(requirement=requirement, schema=schema, **kwargs)


def _asked(schema, requirement, **kwargs):
    with pytest.raises(PlanningError) as caught:
        _plan(schema, requirement, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("schema", "requirement"),
    [
        (HR, "senior employees"),
        (HR, "number of employees per department"),
        (HR, "average salary by grade"),
        (HR, "employees hired since 2024-01-01"),
        (HR, "employees with no leave requests in the last 90 days"),
        (HR, "top 5 employees by salary"),
        (CLINIC, "appointments per specialty"),
        (LOGISTICS, "shipments in transit"),
    ],
)
def test_every_design_carries_an_interpretation_whose_phrases_are_the_requirements_own_words(schema, requirement):
    plan = _plan(schema, requirement)
    interp = plan.interpretation
    assert interp is not None
    assert interpretation_parse(plan.to_dict()["interpretation"]) == interp  # the JSON round-trips
    for _path, phrase in interp.phrases():
        assert phrase.lower() in requirement.lower()
    covered = " ".join(phrase for _, phrase in interp.phrases()).lower()
    content = [w for w in re.findall(r"[a-z0-9-]+", requirement.lower()) if w not in {"the", "in", "with", "by", "of"}]
    assert all(w in covered for w in content), (content, covered)


def test_a_value_of_the_data_becomes_a_filter_with_its_parameter():
    interp = _plan(HR, "senior employees").interpretation
    [only] = interp.filters
    assert (only.column.column, only.param, only.phrase) == ("grade", "grade", "senior")
    assert interp.parameter("grade").default == "senior"


def test_a_count_per_parent_joins_along_the_foreign_key():
    interp = _plan(HR, "number of employees per department").interpretation
    root, department = interp.entities
    assert (root.object, department.object) == ("employees", "departments")
    assert department.join.to == root.alias and department.join.on == [("department_id", "department_id")]
    assert [m.func for m in interp.measures] == ["count"]
    assert {g.column.column for g in interp.group_by} >= {"department_id"}


def test_no_related_rows_in_a_window_is_a_negated_exists_with_its_window():
    interp = _plan(HR, "employees with no leave requests in the last 90 days").interpretation
    [anti] = interp.exists
    assert anti.negated and anti.entities[0].object == "leave_requests"
    assert anti.window.start.relative.amount == -90 and anti.window.start.relative.unit == "day"


def test_an_unknown_word_is_asked_about_with_values_and_columns_that_look_like_it():
    error = _asked(CLINIC, "appointments of cardiologists")
    assert "cardiologists" in str(error) and "I understood: appointments" in str(error)
    [question] = error.questions
    labels = [c.label for c in question.choices]
    assert "doctors.specialty = 'cardiology'" in labels
    choice = next(c for c in question.choices if c.label == "doctors.specialty = 'cardiology'")
    assert choice.mapping == {
        "term": "cardiologists",
        "kind": "value",
        "object": "doctors",
        "column": "specialty",
        "op": "eq",
        "value": "cardiology",
    }
    assert question.allow_other and any(c.mapping.get("kind") == "ignore" for c in question.choices)


def test_the_glossary_answers_the_question_so_the_same_term_asks_nothing_next_time():
    error = _asked(CLINIC, "appointments of cardiologists")
    answer = next(c.mapping for c in error.questions[0].choices if c.label == "doctors.specialty = 'cardiology'")
    plan = _plan(CLINIC, "appointments of cardiologists", glossary=[answer])
    [only] = plan.interpretation.filters
    assert (only.column.column, only.phrase) == ("specialty", "cardiologists")
    assert plan.interpretation.entity(only.column.entity).object == "doctors"
    # Another requirement with the inflected term asks nothing either.
    again = _plan(CLINIC, "number of appointments per doctor for a cardiologist", glossary=[answer])
    assert again.interpretation.filters[0].column.column == "specialty"


def test_a_glossary_term_can_name_a_table_or_be_left_out():
    glossary = [
        {"term": "visits", "kind": "entity", "object": "appointments"},
        {"term": "kindly", "kind": "ignore"},
    ]
    plan = _plan(CLINIC, "kindly list visits in the last 30 days", glossary=glossary)
    assert plan.interpretation.root.object == "appointments"
    assert plan.interpretation.windows[0].column.column == "scheduled_at"


def test_questions_come_before_exploring_from_the_catalog_alone():
    questions = requirement_questions(requirement="appointments of cardiologists", schema=CLINIC)
    assert [q.phrase for q in questions] == ["cardiologists"]
    assert requirement_questions(requirement="appointments per specialty", schema=CLINIC) == []


def test_a_decline_says_what_was_understood_and_never_mentions_a_model():
    error = _asked(LOGISTICS, "shipments handled by the night crew")
    message = str(error)
    assert message.startswith("I understood: shipments.")
    assert "'night', 'crew'" in message or "'night'" in message
    assert not any(word in message.lower() for word in ("llm", "language model", "architect", "offline planner"))


def test_a_persons_name_is_their_first_and_last_name():
    interp = _plan(HR, "leave requests with employee name").interpretation
    person = next(e for e in interp.entities if e.object == "employees")
    named = [s.column.column for s in interp.select if s.column.entity == person.alias]
    assert named == ["first_name", "last_name"]


def test_a_paraphrase_of_a_table_name_is_asked_about_never_guessed():
    shop = schema_of(
        {
            "customers": {
                "columns": {"customer_id": "integer", "name": "string", "region": "string"},
                "pk": ["customer_id"],
                "values": {"region": ["EU", "US"]},
            },
            "invoices": {
                "columns": {"invoice_id": "integer", "customer_id": "integer", "amount": "number"},
                "pk": ["invoice_id"],
                "fks": {"customer_id": "customers.customer_id"},
            },
        }
    )
    error = _asked(shop, "clients in the EU")
    [question] = error.questions
    assert question.phrase == "clients"
    assert {"term": "clients", "kind": "entity", "object": "customers"} in [c.mapping for c in question.choices]
    answered = _plan(shop, "clients in the EU", glossary=[{"term": "clients", "kind": "entity", "object": "customers"}])
    assert answered.interpretation.root.object == "customers"
    assert answered.interpretation.filters[0].column.column == "region"


def test_inflected_words_meet_the_columns_they_name():
    interp = _plan(HR, "employees hired since 2024-01-01").interpretation
    [window] = interp.windows
    assert window.column.column == "hired_on" and window.phrase == "hired since 2024-01-01"


@pytest.mark.parametrize(
    ("schema", "requirement"),
    [
        (HR, "senior employees"),
        (HR, "number of employees per department"),
        (HR, "average salary by grade"),
        (HR, "employees hired since 2024-01-01"),
        (HR, "employees with no leave requests in the last 90 days"),
        (HR, "top 5 employees by salary"),
        (HR, "leave requests with employee name"),
        (CLINIC, "appointments per specialty"),
        (CLINIC, "cancelled appointments this month"),
        (LOGISTICS, "shipments in transit"),
        (LOGISTICS, "number of shipments per depot city"),
    ],
)
def test_the_platform_finds_every_phrase_accounted_for_and_compiles_the_interpretation(schema, requirement):
    plan = _plan(schema, requirement)
    catalog = Catalog(schema)
    findings = coverage_check(requirement=requirement, interpretation=plan.interpretation)
    findings += shape_check(requirement=requirement, interpretation=plan.interpretation, catalog=catalog)
    assert failed(findings) == []
    compiled = interpretation_compile(plan.interpretation, catalog=catalog, dialect="postgres")
    assert compiled.sql.startswith("SELECT ")


SHOP = schema_of(
    {
        "clients": {
            "columns": {"client_id": "integer", "name": "string", "country": "string"},
            "pk": ["client_id"],
            "values": {"country": ["PT", "NL"]},
        },
        "bookings": {
            "columns": {
                "booking_id": "integer",
                "client_id": "integer",
                "booked_at": "date-time",
                "state": "string",
                "gross": "number",
                "fees": "number",
            },
            "pk": ["booking_id"],
            "fks": {"client_id": "clients.client_id"},
            "values": {"state": ["confirmed", "cancelled", "refunded"]},
        },
    }
)


def test_revenue_is_a_business_definition_asked_about_when_statuses_or_columns_could_change_it():
    error = _asked(SHOP, "monthly revenue")
    kinds = [q.kind for q in error.questions]
    assert kinds == ["measure", "filter"]
    columns = [c.mapping.get("column") for c in error.questions[0].choices]
    assert columns == ["gross", "fees"]
    states = [c.label for c in error.questions[1].choices]
    assert "bookings.state = 'confirmed'" in states and "every state counts" in states


def test_an_answered_revenue_definition_is_used_with_its_statuses_and_asks_nothing_again():
    glossary = [
        {"term": "revenue", "kind": "measure", "func": "sum", "object": "bookings", "column": "gross"},
        {
            "term": "revenue",
            "kind": "filter",
            "object": "bookings",
            "filters": [{"column": "state", "op": "in", "values": ["confirmed"]}],
        },
    ]
    for requirement in ("monthly revenue", "revenue per client this year"):
        interp = _plan(SHOP, requirement, glossary=glossary).interpretation
        [measure] = interp.measures
        assert (measure.func, measure.column.column) == ("sum", "gross")
        condition = next(f for f in interp.filters if f.column.column == "state")
        assert (condition.op, condition.values) == ("in", ["confirmed"])
        findings = coverage_check(requirement=requirement, interpretation=interp)
        assert failed(findings) == []


def test_a_single_money_column_with_no_status_is_revenue_without_asking():
    plain = schema_of(
        {
            "sales": {
                "columns": {"sale_id": "integer", "sold_on": "date", "amount": "number"},
                "pk": ["sale_id"],
            }
        }
    )
    interp = _plan(plain, "monthly revenue").interpretation
    assert interp.measures[0].column.column == "amount"
