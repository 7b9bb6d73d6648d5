"""The providers against a real local model (llama-cpp-python's OpenAI-compatible server, SmolLM2-135M).

What must hold is Nectar's side: the server is probed once and what it refused is recorded, a
structured answer arrives whatever the server supports, tool calls come back as tool calls, and
a prompt too large for the model is refused with the sizes, never sent blindly.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from agents.models import ModelCapability
from agents.providers import LLMError, Message, MeteredProvider, ToolSpec, UsageMeter, provider_for
from tests.conftest import PASSWORD
from tests.llm.conftest import CONTEXT_TOKENS, MODEL

pytestmark = [pytest.mark.llm, pytest.mark.django_db]

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    },
    "required": ["path", "limit"],
    "additionalProperties": False,
}
DESCRIBE = ToolSpec(
    name="describe_object",
    description="Columns, keys and sample values of one table or view of the database.",
    input_schema={
        "type": "object",
        "properties": {"name": {"type": "string", "description": "table or view name"}},
        "required": ["name"],
    },
)


def ask(provider, content: str, **kwargs):
    return provider.complete(
        messages=[Message("system", "You are Nectar's API architect."), Message("user", content)], **kwargs
    )


def test_the_local_server_is_probed_once_and_what_it_refused_is_recorded(local_model, llm_server_url):
    provider = provider_for()

    completion = ask(provider, "Name an endpoint for the top 10 products.", response_schema=ANSWER_SCHEMA)

    row = ModelCapability.objects.get(provider_kind="openai", base_url=llm_server_url, model=MODEL)
    # llama-cpp-python answers HTTP 500 to response_format json_schema: recorded, not retried.
    assert row.json_schema is False
    assert "json_object" in row.failures["json_schema"]
    assert row.tool_calling is True and row.json_object is True
    assert row.server == "llama-cpp-python" and row.tokenizer_url.endswith("/extras/tokenize/count")
    assert row.probe_tokens > 0 and row.probed_at is not None
    # The answer came through the forced tool call, constrained to the schema by the server's grammar.
    assert completion.mode == "tools"
    assert set(completion.structured) == {"path", "limit"}
    assert isinstance(completion.structured["limit"], int)
    assert completion.usage.input_tokens > 0 and completion.usage.output_tokens > 0

    probed_at = row.probed_at
    provider_for().capabilities  # noqa: B018 - a second provider reads the row
    row.refresh_from_db()
    assert row.probed_at == probed_at


def test_json_object_mode_gives_a_json_object_and_the_text_protocol_one_or_a_clear_failure(local_model):
    provider = provider_for()
    provider._capabilities = provider.capabilities.without("tool_calling", "disabled by the test")

    completion = ask(provider, "Name an endpoint for the top 10 products.", response_schema=ANSWER_SCHEMA)

    # The server turns the schema of response_format json_object into a grammar.
    assert completion.mode == "json_object" and set(completion.structured) == {"path", "limit"}

    provider._capabilities = provider.capabilities.without("json_object", "disabled by the test")
    try:
        completion = ask(provider, "Name an endpoint for the top 10 products.", response_schema=ANSWER_SCHEMA)
    except LLMError as error:
        # So small a model often writes no JSON without a grammar: repaired a bounded number of times, then said.
        assert error.code == "invalid_output" and "did not answer with a JSON object in 3 tries" in str(error)
        assert error.usage.input_tokens > 0
    else:
        assert completion.mode == "text" and isinstance(completion.structured, dict)


def test_tool_calls_of_the_model_come_back_as_nectar_tool_calls_with_their_tokens(local_model):
    meter = UsageMeter(prices={})
    provider = MeteredProvider(provider_for(), meter)

    completion = provider.complete(
        messages=[
            Message("system", "You explore a database with tools. Call describe_object to look at a table."),
            Message("user", "Describe the orders table."),
        ],
        tools=[DESCRIBE],
        max_tokens=200,
    )

    assert completion.tool_calls or completion.text
    for call in completion.tool_calls:
        assert call.name == "describe_object" and isinstance(call.arguments, dict)
    assert meter.calls >= 1 and meter.input_tokens > 0


def test_a_prompt_larger_than_the_window_is_refused_and_the_window_is_learned_from_the_server(
    local_model, llm_server_url
):
    provider = provider_for()
    huge = "Describe every order in detail. " * 2000

    with pytest.raises(LLMError) as first:
        ask(provider, huge, max_tokens=200)
    assert first.value.code == "context_length"
    assert f"context window of {CONTEXT_TOKENS:,} tokens" in str(first.value)

    row = ModelCapability.objects.get(base_url=llm_server_url, model=MODEL)
    assert row.context_length == CONTEXT_TOKENS
    with pytest.raises(LLMError, match=r"counted by the server's tokenizer|estimated from") as second:
        ask(provider_for(), huge, max_tokens=200)
    assert second.value.code == "context_length"


def test_a_superuser_probes_the_local_model_again_from_admin(client, local_model, llm_server_url):
    ModelCapability.objects.create(provider_kind="openai", base_url=llm_server_url, model=MODEL, json_schema=True)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    assert client.login(username="root", password=PASSWORD)
    row = ModelCapability.objects.get(model=MODEL)

    page = client.post(
        reverse("admin:agents_modelcapability_changelist"),
        {"action": "probe_again", "_selected_action": [row.pk]},
        follow=True,
    ).content.decode()

    assert "probed; supports tool_calling, json_object" in page
    row.refresh_from_db()
    assert row.json_schema is False and row.probed_at is not None
