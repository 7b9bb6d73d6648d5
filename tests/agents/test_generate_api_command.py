"""python manage.py generate_api: the pipeline in the terminal, human-readable or as one JSON result."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import AgentExecution, AgentStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_json_mode_prints_one_machine_readable_result(analyst_role, owner):
    out = StringIO()
    call_command(
        "generate_api", "Customers with no activity in the last 90 days", role="Sales analyst", json=True, stdout=out
    )
    result = json.loads(out.getvalue())
    assert result["status"] == AgentStatus.COMPLETED
    endpoint = result["endpoint"]
    assert endpoint["method"] == "GET"
    assert endpoint["url"].endswith(f"/api/v1/x/{analyst_role.organization.slug}/{endpoint['slug']}")
    assert "NOT EXISTS" in endpoint["sql"].upper()
    assert endpoint["test_results"]["cases"] and all(c["passed"] for c in endpoint["test_results"]["cases"])
    assert "curl" in endpoint["docs"]
    # The agents' prose and the platform's reference appear once each, with the live URL only.
    assert endpoint["docs"].count("```bash") == 1
    assert "example.com" not in endpoint["docs"]
    assert result["metrics"]["agent_steps"] > 0
    assert AgentExecution.objects.get(pk=result["execution_id"]).user == owner


def test_human_mode_shows_progress_design_sql_tests_and_docs(analyst_role, owner):
    out = StringIO()
    call_command("generate_api", "Customers in the EU", role=str(analyst_role.pk), stdout=out)
    text = out.getvalue()
    for expected in ("Explore the data", "Document", "SQL:", "Tests:", "PASS", "Documentation:", "GET "):
        assert expected in text


def test_unknown_role_and_failures_are_reported_as_command_errors(analyst_role, owner):
    with pytest.raises(CommandError, match="No role named"):
        call_command("generate_api", "Customers in the EU", role="Nobody")
    with pytest.raises(CommandError, match="it asks for a prediction"):
        call_command(
            "generate_api",
            "Predict which customers will churn next month",
            role="Sales analyst",
            stdout=StringIO(),
            stderr=StringIO(),
        )


def test_role_names_match_in_any_case(analyst_role, owner):
    out = StringIO()
    call_command("generate_api", "Customers in the EU", role="sales ANALYST", json=True, stdout=out)
    assert json.loads(out.getvalue())["status"] == AgentStatus.COMPLETED


def test_a_misspelt_role_gets_did_you_mean_suggestions(analyst_role):
    with pytest.raises(CommandError, match=r"No role named 'Sales analist'\. Did you mean 'Sales analyst'\?"):
        call_command("generate_api", "Customers in the EU", role="Sales analist")


def test_a_wrong_organization_is_named_as_such(analyst_role):
    slug = analyst_role.organization.slug
    with pytest.raises(CommandError, match=rf"No organization with the slug '{slug}x'\. Did you mean '{slug}'\?"):
        call_command("generate_api", "Customers in the EU", role="Sales analyst", org=f"{slug}x")


def test_a_failure_is_printed_once_and_the_spinner_is_stopped(analyst_role, owner):
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "generate_api",
            "Predict which customers will churn next month",
            role="Sales analyst",
            stdout=out,
            stderr=err,
        )
    reason = AgentExecution.objects.get(business_requirement__startswith="Predict").status_reason
    assert reason and reason in str(raised.value)
    assert reason not in out.getvalue() and reason not in err.getvalue()
    assert "stopped while" in out.getvalue() and "during" not in out.getvalue()
    # Nothing is left drawing after the command returned: the last line is not a spinner frame.
    assert "starting" not in out.getvalue().splitlines()[-1]


REVENUE = "Top 10 products by revenue in the last 90 days"


def _asked(analyst_role) -> list[dict]:
    """The questions the run asks, as --json prints them before the command stops."""
    out = StringIO()
    with pytest.raises(CommandError, match="waits for your answers"):
        call_command("generate_api", REVENUE, role="Sales analyst", json=True, stdout=out)
    result = json.loads(out.getvalue())
    assert result["status"] == AgentStatus.WAITING and result["questions"]
    return result["questions"]


def _pick(question) -> str:
    return next((c for c in question["choices"] if "line_total" in c["label"]), question["choices"][0])["id"]


def test_answers_given_as_arguments_resume_the_run_and_fill_the_glossary(analyst_role, owner):
    from learning.glossary import glossary_lookup

    questions = _asked(analyst_role)
    out = StringIO()
    answers = [f"{q['id']}={_pick(q)}" for q in questions]
    try:
        call_command("generate_api", REVENUE, role="Sales analyst", json=True, answer=answers, stdout=out)
    except CommandError as error:  # a second round of questions is reported, never a crash
        assert "waits for your answers" in str(error)
    result = json.loads(out.getvalue())
    execution = AgentExecution.objects.get(pk=result["execution_id"])
    assert len(execution.answers) >= len(questions)
    assert glossary_lookup(service=analyst_role.service, term="revenue", kind="measure") is not None


def test_a_bad_answer_argument_is_refused_and_changes_nothing(analyst_role, owner):
    from learning.glossary import glossary_terms

    questions = _asked(analyst_role)
    with pytest.raises(CommandError, match="That answer cannot be used"):
        call_command(
            "generate_api",
            REVENUE,
            role="Sales analyst",
            json=True,
            answer=[f"{q['id']}=not_a_choice" for q in questions],
            stdout=StringIO(),
        )
    with pytest.raises(CommandError, match="write QUESTION=CHOICE"):
        call_command("generate_api", REVENUE, role="Sales analyst", answer=["revenue"], stdout=StringIO())
    assert glossary_terms(service=analyst_role.service) == []


def test_at_a_terminal_the_run_asks_each_question_and_takes_a_numbered_answer(analyst_role, owner, monkeypatch):
    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    replies = []

    def answer(prompt: str) -> str:
        replies.append(prompt)
        return "2" if len(replies) == 1 else "1"  # revenue: line_total; statuses: every status

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", answer)
    out = StringIO()
    try:
        call_command("generate_api", REVENUE, role="Sales analyst", stdout=out)
    except CommandError as error:
        assert "waits for your answers" not in str(error), error
    text = out.getvalue()
    assert "  1. " in text and replies and all(r.startswith("Your answer: a number") for r in replies)
    execution = AgentExecution.objects.filter(parent__isnull=True).order_by("-created_at").first()
    assert execution.answers and execution.status != AgentStatus.WAITING


def test_an_answer_keyed_by_a_phrase_two_questions_share_is_refused_naming_their_ids(analyst_role, owner):
    from learning.glossary import glossary_terms

    questions = _asked(analyst_role)
    shared = [q["id"] for q in questions if q["phrase"] == "revenue"]
    assert len(shared) == 2  # the sum of which column, and which statuses count
    with pytest.raises(CommandError) as refused:
        call_command("generate_api", REVENUE, role="Sales analyst", json=True, answer=["revenue=x"], stdout=StringIO())
    assert "2 questions are about 'revenue'" in str(refused.value)
    assert all(qid in str(refused.value) for qid in shared)
    assert glossary_terms(service=analyst_role.service) == []


def test_answers_keyed_by_question_id_are_taken_with_several_choices_where_allowed(analyst_role, owner):
    from learning.glossary import glossary_lookup

    questions = _asked(analyst_role)
    statuses = next(q for q in questions if q["multiple"])
    two = [c["id"] for c in statuses["choices"] if "= '" in c["label"]][:2]
    answers = [f"{q['id']}={_pick(q)}" for q in questions if q is not statuses] + [f"{statuses['id']}={','.join(two)}"]
    out = StringIO()
    call_command("generate_api", REVENUE, role="Sales analyst", json=True, answer=answers, stdout=out)
    term = glossary_lookup(service=analyst_role.service, term="revenue", kind="filter")
    assert term is not None and len(term.mapping.filters[0].values) == 2
    # The statuses are conditions on the orders of the summed order lines, both of them.
    result = json.loads(out.getvalue())
    assert result["status"] == AgentStatus.COMPLETED, result["reason"]
    sql = result["endpoint"]["sql"]
    assert "line_total" in sql and "orders" in sql
    values = ", ".join(f"'{v}'" for v in term.mapping.filters[0].values)
    assert f'o."status" IN ({values})' in sql


def test_at_a_terminal_a_number_out_of_range_is_asked_again_not_taken_as_words(analyst_role, owner, monkeypatch):
    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    replies = iter(["9", "0", "line_total", "1"])  # two numbers that are no choice, line_total, every status
    prompts = []
    out = StringIO()

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        reply = next(replies)
        if reply == "line_total":  # the number the command printed beside that choice
            reply = re.findall(r"(\d+)\. the sum of order_items\.line_total", out.getvalue())[-1]
        return reply

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", answer)
    try:
        call_command("generate_api", REVENUE, role="Sales analyst", stdout=out)
    except CommandError as error:
        assert "waits for your answers" not in str(error), error
    text = out.getvalue()
    assert "There is no choice 9: choose a number from 1 to" in text
    assert "There is no choice 0: choose a number from 1 to" in text
    execution = AgentExecution.objects.filter(parent__isnull=True).order_by("-created_at").first()
    answered = [a["answer"] for a in execution.answers]
    assert "9" not in answered and "0" not in answered
    assert any("line_total" in a for a in answered)
