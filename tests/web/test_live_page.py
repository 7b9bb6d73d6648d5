"""The live page speaks plainly: phases and what each did first, tool calls folded behind a toggle."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from agents.events import event_append
from tests.web.conftest import login, run_phases

pytestmark = pytest.mark.django_db


def test_the_live_page_shows_phases_with_plain_progress_and_folds_tool_calls(client, member, execution):
    run_phases(execution, upto=2)
    event_append(
        execution=execution, kind="phase", phase="security", payload={"phase": "security", "status": "started"}
    )
    page = login(client, member).get(reverse("execution-detail", args=[execution.pk])).text
    assert 'id="events" class="timeline hide-details"' in page
    assert 'id="toggle-details" aria-pressed="false"' in page
    tool_events = re.findall(r'<div class="event kind-(?:tool_call|tool_result|thought)([^"]*)"', page)
    assert tool_events and all("detail" in classes for classes in tool_events)
    assert re.search(r'<div class="event kind-phase"', page)
    assert "Made 1 look-up in the database." in page
    assert "Checking that the query reads only what the role may read" in page  # what is happening now


def test_pages_of_a_run_never_say_architect_or_language_model(client, member, execution):
    from agents.models import PHASE_ORDER

    for name in PHASE_ORDER:
        for status in ("started", "completed"):
            event_append(execution=execution, kind="phase", phase=name, payload={"phase": name, "status": status})
    event_append(
        execution=execution,
        kind="collaboration",
        agent="IMPLEMENTER",
        payload={"helper": "ARCHITECT", "task": "Fix the filter"},
    )
    page = login(client, member).get(reverse("execution-detail", args=[execution.pk])).text
    shown = re.sub(r"<script.*?</script>|<[^>]+>", " ", page, flags=re.S).lower()
    assert "fix the filter" in shown
    for word in ("architect", "language model", "offline planner"):
        assert word not in shown


def test_progress_fragment_reports_the_tests_in_plain_words(client, member, execution):
    run_phases(execution)
    event_append(execution=execution, kind="tests", phase="testing", payload={"passed": 2, "failed": 1, "total": 3})
    fragment = login(client, member).get(reverse("execution-progress", args=[execution.pk])).text
    assert "2 of 3 tests passed on the live data." in fragment


def test_a_failed_run_says_what_happened_and_what_to_do_next(client, member, execution):
    execution.mark_failed("No table holds 'weather'.")
    page = login(client, member).get(reverse("execution-detail", args=[execution.pk])).text
    assert "What happened" in page and "What to do next" in page and "No table holds" in page


def test_exploration_counts_the_objects_looked_at_once_each(execution):
    from web.selectors import execution_events, phase_summaries

    run_phases(execution, upto=1)
    for tool, arguments in [
        ("analyze_orders_schema", {}),
        ("query_orders", {"limit": 5}),
        ("describe_object", {"object": "customers"}),
    ]:
        event_append(
            execution=execution, kind="tool_call", phase="exploration", payload={"tool": tool, "arguments": arguments}
        )
    summary = phase_summaries(events=execution_events(execution=execution))["exploration"]
    assert summary == "Looked at 2 tables or views of the database."


def test_a_failure_reason_is_shown_without_internal_names(client, member, execution):
    execution.mark_failed(
        "the architect could not get an answer from the language model: I cannot build this: it asks for a "
        "prediction. This requirement needs an LLM provider; the offline planner reads data only."
    )
    page = login(client, member).get(reverse("execution-detail", args=[execution.pk])).text
    shown = re.sub(r"<script.*?</script>|<[^>]+>", " ", page, flags=re.S)
    assert "I cannot build this: it asks for a prediction" in shown
    for word in ("architect", "language model", "offline planner", "LLM"):
        assert word not in shown
