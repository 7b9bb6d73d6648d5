"""Ask instead of failing: a run waits with questions, answers become glossary terms, and the run goes on."""

from __future__ import annotations

import pytest

from agents.models import AgentStatus
from agents.orchestrator import execution_run
from agents.services import ExecutionError, execution_answer, execution_cancel, execution_claim, execution_submit
from endpoints.models import GeneratedEndpoint
from learning.glossary import glossary_lookup, glossary_terms

pytestmark = pytest.mark.django_db(transaction=True)

REVENUE = "Top 10 products by revenue in the last 90 days"


def _run(role, user, requirement):
    execution = execution_submit(user=user, role=role, requirement=requirement, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    return execution


def _resume(execution):
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    return execution


def _choose(question, *, containing: str) -> str:
    return next(c["id"] for c in question["choices"] if containing in c["label"])


def test_a_run_waits_with_questions_whose_choices_come_from_the_schema_and_data(analyst_role, owner):
    execution = _run(analyst_role, owner, REVENUE)
    assert execution.status == AgentStatus.WAITING
    assert execution.questions and all(q["choices"] or q["allow_other"] for q in execution.questions)
    labels = " ".join(c["label"] for q in execution.questions for c in q["choices"])
    assert "line_total" in labels or "total_amount" in labels
    assert execution.events.filter(kind="questions").exists()
    assert not GeneratedEndpoint.objects.filter(source_execution=execution).exists()


def test_answering_defines_the_terms_resumes_the_run_and_the_next_requirement_asks_nothing(analyst_role, owner):
    execution = _run(analyst_role, owner, REVENUE)
    answers = {}
    for q in execution.questions:
        if any("line_total" in c["label"] for c in q["choices"]):
            answers[q["id"]] = _choose(q, containing="line_total")
        else:
            answers[q["id"]] = q["choices"][0]["id"]
    execution = execution_answer(execution=execution, user=owner, answers=answers, enqueue=False)
    assert execution.status == AgentStatus.PENDING and execution.questions == []
    assert len(execution.answers) == len(answers)
    assert glossary_lookup(service=analyst_role.service, term="revenue") is not None

    execution = _resume(execution)
    assert execution.status in (AgentStatus.COMPLETED, AgentStatus.WAITING), execution.status_reason
    if execution.status == AgentStatus.COMPLETED:
        endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
        assert "line_total" in endpoint.sql

    again = _run(analyst_role, owner, "Top 5 products by revenue in the last 90 days")
    asked = {q["phrase"] for q in again.questions}
    assert "revenue" not in asked


def test_a_bad_answer_is_refused_and_changes_nothing(analyst_role, owner):
    execution = _run(analyst_role, owner, REVENUE)
    question = execution.questions[0]
    with pytest.raises(ExecutionError) as unknown:
        execution_answer(execution=execution, user=owner, answers={"nope": "x"}, enqueue=False)
    assert unknown.value.field == "answers.nope"
    with pytest.raises(ExecutionError) as bad_choice:
        execution_answer(
            execution=execution,
            user=owner,
            answers={q["id"]: "not-a-choice" for q in execution.questions if not q["allow_other"]}
            or {question["id"]: {"choice": "not-a-choice"}},
            enqueue=False,
        )
    assert bad_choice.value.field.startswith("answers.")
    execution.refresh_from_db()
    assert execution.status == AgentStatus.WAITING and execution.questions
    assert glossary_terms(service=analyst_role.service) == []


def test_someone_else_cannot_answer_and_a_finished_run_takes_no_answer(analyst_role, owner, member, outsider):
    execution = _run(analyst_role, owner, REVENUE)
    answers = {q["id"]: q["choices"][0]["id"] for q in execution.questions}
    with pytest.raises(ExecutionError) as forbidden:
        execution_answer(execution=execution, user=member, answers=answers, enqueue=False)
    assert forbidden.value.code == "forbidden"
    with pytest.raises(ExecutionError):
        execution_answer(execution=execution, user=outsider, answers=answers, enqueue=False)
    execution_cancel(execution=execution)
    execution.refresh_from_db()
    assert execution.status == AgentStatus.FAILED
    with pytest.raises(ExecutionError) as finished:
        execution_answer(execution=execution, user=owner, answers=answers, enqueue=False)
    assert finished.value.code == "invalid_state"


def test_a_free_text_answer_rephrases_the_requirement(analyst_role, owner):
    execution = _run(analyst_role, owner, "Customers whose favourite colour is teal")
    assert execution.status == AgentStatus.WAITING
    answers = {}
    for q in execution.questions:
        answers[q["id"]] = {"other": "in the EU"} if q["phrase"] == "teal" else _choose(q, containing="leave it out")
    execution = execution_answer(execution=execution, user=owner, answers=answers, enqueue=False)
    assert "in the EU" in execution.result["requirement"]
    execution = _resume(execution)
    assert execution.status in (AgentStatus.COMPLETED, AgentStatus.WAITING), execution.status_reason


def test_the_token_meter_keeps_counting_across_questions(analyst_role, owner):
    execution = _run(analyst_role, owner, REVENUE)
    spent = execution.result["usage"]["total_tokens"]
    assert spent > 0
    answers = {q["id"]: q["choices"][0]["id"] for q in execution.questions}
    execution = _resume(execution_answer(execution=execution, user=owner, answers=answers, enqueue=False))
    assert execution.result["usage"]["total_tokens"] > spent


def test_an_answer_that_would_make_a_grammar_word_a_term_is_refused_and_changes_nothing(analyst_role, owner):
    execution = _run(analyst_role, owner, REVENUE)
    questions = [dict(q) for q in execution.questions]
    first = questions[0]
    first["phrase"] = "last"
    first["choices"] = [
        {**c, "mapping": {k: v for k, v in c["mapping"].items() if k != "term"}} for c in first["choices"]
    ]
    execution.questions = questions
    execution.save(update_fields=["questions"])
    answers = {q["id"]: q["choices"][0]["id"] for q in questions}
    with pytest.raises(ExecutionError) as refused:
        execution_answer(execution=execution, user=owner, answers=answers, enqueue=False)
    assert refused.value.field == f"answers.{first['id']}" and "not a business term" in str(refused.value)
    execution.refresh_from_db()
    assert execution.status == AgentStatus.WAITING
    assert glossary_terms(service=analyst_role.service) == []


def test_which_statuses_count_is_a_question_of_several_answers_whose_values_add_up(analyst_role, owner):
    execution = _run(analyst_role, owner, REVENUE)
    statuses = next(q for q in execution.questions if "values count" in q["text"])
    assert statuses["multiple"] is True
    measure = next(q for q in execution.questions if q is not statuses)
    assert measure["multiple"] is False  # one column is summed
    picked = [c for c in statuses["choices"] if "= '" in c["label"]][:2]
    assert len(picked) == 2
    answers = {statuses["id"]: [c["id"] for c in picked], measure["id"]: _choose(measure, containing="line_total")}
    execution_answer(execution=execution, user=owner, answers=answers, enqueue=False)
    term = glossary_lookup(service=analyst_role.service, term="revenue", kind="filter")
    values = [v for condition in term.mapping.filters for v in condition.values]
    assert sorted(values) == sorted(c["mapping"]["filters"][0]["values"][0] for c in picked)
