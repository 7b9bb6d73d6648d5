"""What a business user reads when a run declines, fails or asks: no internal names, and always a next step.

Each requirement below ends without an endpoint, through the offline provider or a provider that
errors. Its reason is read where people read it: the execution in the pipeline, the REST API, the
live page and the command line.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from agents.models import AgentStatus
from agents.orchestrator import execution_run
from agents.providers import LLMError
from agents.providers.offline import OfflineProvider
from agents.services import execution_claim, execution_submit
from api.models import PersonalToken

pytestmark = pytest.mark.django_db(transaction=True)

# Words of Nectar's insides: its agents, the model behind them, the built-in designer, a phase's own name.
INTERNAL = re.compile(
    r"\b(architect\w*|implementer|implementation|explorer|exploration|tester|documenter|security agent|"
    r"language[- ]models?|LLMs?|offline|planner)\b",
    re.I,
)
# Every reason ends with what to do next.
NEXT_STEP = re.compile(
    r"\b(rephrase|try again|try a|try rephrasing|answer the question|describe it|ask an admin|tell your admin|"
    r"ask an administrator|name the|choose)\b",
    re.I,
)


class KeyRejected(OfflineProvider):
    """A hosted model whose vendor refuses the organization's key when the design is asked for."""

    def _architect(self, context, messages, tool_names):
        raise LLMError(
            "Anthropic rejected the API key (401); check ANTHROPIC_API_KEY or the organization's LLM key",
            status=401,
        )


class ServerDown(OfflineProvider):
    """A hosted model that keeps answering 503 to the explorer."""

    def _explorer(self, context, messages, tool_names):
        raise LLMError("OpenAI server error (503)", retryable=True, status=503)


class AlwaysRejects(OfflineProvider):
    """A security reviewer that turns every design down."""

    def _security(self, context, messages, tool_names):
        text, structured, calls = super()._security(context, messages, tool_names)
        return text, {**structured, "approved": False, "issues": ["the architect's design reads too much"]}, calls


CASES = [
    # (requirement, provider, what the run ends as)
    ("Delete all customers who never ordered", None, AgentStatus.FAILED),
    ("Predict which customers will churn next month", None, AgentStatus.FAILED),
    ("Customers whose favourite colour is teal", None, AgentStatus.WAITING),
    ("Customers in the EU", KeyRejected, AgentStatus.FAILED),
    ("Customers in the EU", ServerDown, AgentStatus.FAILED),
    ("Customers in the EU", AlwaysRejects, AgentStatus.FAILED),
]


class _Shown(HTMLParser):
    """The text a page shows by default: no markup, scripts or styles, and no folded details (tool calls,
    the agents' own reasoning), which appear only when someone asks for them."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # for each open element: whether it hides its content
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        self.stack.append(tag in ("script", "style") or "detail" in classes)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not any(self.stack):
            self.parts.append(data)


def _shown(html: str) -> str:
    parser = _Shown()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def _plain(text: str, where: str) -> None:
    found = INTERNAL.findall(text)
    assert not found, f"{where} says {found}: {text}"


def _run(role, user, requirement: str, provider):
    execution = execution_submit(user=user, role=role, requirement=requirement, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk), provider=provider() if provider else None)
    execution.refresh_from_db()
    return execution


@pytest.mark.parametrize(("requirement", "provider", "ends"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_run_that_ends_without_an_endpoint_says_so_plainly_everywhere_with_a_next_step(
    analyst_role, owner, client, requirement, provider, ends
):
    execution = _run(analyst_role, owner, requirement, provider)
    assert execution.status == ends, execution.status_reason
    reason = execution.status_reason
    _plain(reason, "the status reason")
    assert NEXT_STEP.search(reason), reason
    for question in execution.questions:
        _plain(question["text"], "a question")

    api = APIClient()
    _, secret = PersonalToken.issue(user=owner, name="reader")
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    body = api.get(f"/api/v1/executions/{execution.pk}/").json()
    assert body["status_reason"] == reason
    for question in body.get("questions") or []:
        _plain(question["text"], "the API's question")

    client.force_login(owner)
    page = _shown(client.get(reverse("execution-detail", args=[execution.pk])).text)
    _plain(page, "the live page")
    assert reason.split(".")[0][:60] in page

    if provider is None:  # the command line runs the same requirement with the platform's provider
        out = StringIO()
        with pytest.raises(CommandError) as stopped:
            call_command("generate_api", requirement, role=analyst_role.name, stdout=out, stderr=StringIO())
        _plain(str(stopped.value), "the command's error")
        _plain(out.getvalue(), "the command's output")
        assert NEXT_STEP.search(str(stopped.value)), stopped.value


def test_the_command_line_says_where_a_provider_error_stopped_the_run_in_plain_words(analyst_role, owner, monkeypatch):
    monkeypatch.setattr("agents.orchestrator.provider_for", lambda **kwargs: KeyRejected())
    out = StringIO()
    with pytest.raises(CommandError) as stopped:
        call_command("generate_api", "Customers in the EU", role=analyst_role.name, stdout=out, stderr=StringIO())
    message = str(stopped.value)
    assert message.startswith("The run stopped while designing the API: ")
    assert "Ask an administrator to check the organization's AI settings" in message
    assert "ANTHROPIC_API_KEY" not in message  # the vendor's own words stay in the run's log
    _plain(message, "the command's error")
    _plain(out.getvalue(), "the command's output")
    assert "Explore the data" in out.getvalue()  # the steps keep the labels the pages show
