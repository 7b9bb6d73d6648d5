"""The Anthropic adapter against recorded-shape Messages API answers; nothing leaves the process."""

from __future__ import annotations

import pytest

from agents.providers import LLMError, Message, MeteredProvider, ToolCall, ToolSpec, UsageMeter
from agents.providers.anthropic_provider import AnthropicProvider
from tests.agents.recordings import CONNECTION_REFUSED, FAKE_KEY, TIMEOUT, ReplayServer, recording

DESCRIBE_TABLE = ToolSpec(
    name="describe_table",
    description="Columns, keys and indexes of one table.",
    input_schema={
        "type": "object",
        "properties": {"schema": {"type": "string"}, "table": {"type": "string"}},
        "required": ["table"],
    },
)
ENDPOINT_SCHEMA = {
    "type": "object",
    "properties": {
        "method": {"type": "string", "enum": ["GET", "POST"]},
        "path": {"type": "string"},
        "read_only": {"type": "boolean"},
        "parameters": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["method", "path", "read_only", "parameters"],
}


@pytest.fixture(autouse=True)
def sleeps(sdk_sleeps):
    return sdk_sleeps


def make_provider(server: ReplayServer, *, max_retries: int = 3) -> AnthropicProvider:
    return AnthropicProvider(
        api_key=FAKE_KEY, model="claude-sonnet-4-6", timeout=5, max_retries=max_retries, http_client=server.client()
    )


def ask(provider, **kwargs):
    return provider.complete(messages=[Message(role="user", content="Which tables hold orders?")], **kwargs)


def test_request_carries_model_system_prompt_turns_tools_and_the_configured_key():
    server = ReplayServer((200, "anthropic_text"))
    provider = make_provider(server)

    provider.complete(
        messages=[
            Message(role="system", content="You are Nectar's explorer."),
            Message(role="user", content="Describe orders."),
            Message(
                role="assistant",
                content="Looking.",
                tool_calls=(ToolCall(id="toolu_1", name="describe_table", arguments={"table": "orders"}),),
            ),
            Message(role="tool", content='{"columns": ["id"]}', tool_call_id="toolu_1", name="describe_table"),
            Message(role="user", content="And now?"),
        ],
        tools=[DESCRIBE_TABLE],
        max_tokens=900,
    )

    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    auth = request.headers.get("x-api-key") or request.headers.get("authorization", "")
    assert auth.endswith(FAKE_KEY)
    assert request.headers.get("x-stainless-retry-count") == "0"
    body = server.body()
    assert body["model"] == "claude-sonnet-4-6"
    assert body["max_tokens"] == 900
    assert body["system"] == "You are Nectar's explorer."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Describe orders."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "describe_table", "input": {"table": "orders"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"columns": ["id"]}'},
                {"type": "text", "text": "And now?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "describe_table",
            "description": DESCRIBE_TABLE.description,
            "input_schema": DESCRIBE_TABLE.input_schema,
        }
    ]
    assert "tool_choice" not in body


def test_text_answer_becomes_a_completion_with_usage_and_model():
    server = ReplayServer((200, "anthropic_text"))

    completion = ask(make_provider(server))

    assert completion.text.startswith("The orders table holds one row per order")
    assert completion.tool_calls == ()
    assert completion.structured is None
    assert completion.stop_reason == "end_turn"
    assert completion.model == "claude-sonnet-4-6"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (318, 27)


def test_tool_use_blocks_become_nectar_tool_calls():
    server = ReplayServer((200, "anthropic_tool_use"))

    completion = ask(make_provider(server), tools=[DESCRIBE_TABLE])

    assert completion.stop_reason == "tool_use"
    assert completion.text == "I will look at the columns of the orders table first."
    assert completion.tool_calls == (
        ToolCall(
            id="toolu_01D7FLrfh4GYq7yT1ULFeyMV",
            name="describe_table",
            arguments={"schema": "public", "table": "orders"},
        ),
        ToolCall(id="toolu_01GxT9qWv3mB8rK2pYzN4hJc", name="sample_rows", arguments={"table": "orders", "limit": 5}),
    )
    # Cached prompt tokens are still input tokens for accounting.
    assert completion.usage.input_tokens == 1404


def test_structured_output_is_answered_through_a_forced_tool():
    server = ReplayServer((200, "anthropic_structured"))

    completion = ask(make_provider(server), response_schema=ENDPOINT_SCHEMA)

    body = server.body()
    assert body["tool_choice"] == {"type": "tool", "name": "respond_with_json"}
    assert body["tools"][-1]["input_schema"] == ENDPOINT_SCHEMA
    assert completion.structured == {
        "method": "GET",
        "path": "/customers/{id}/orders",
        "read_only": True,
        "parameters": ["id", "since"],
    }
    assert completion.tool_calls == ()


def test_structured_output_next_to_real_tools_lets_the_model_choose_any_tool():
    server = ReplayServer((200, "anthropic_tool_use"))

    completion = ask(make_provider(server), tools=[DESCRIBE_TABLE], response_schema=ENDPOINT_SCHEMA)

    assert server.body()["tool_choice"] == {"type": "any"}
    assert [tool["name"] for tool in server.body()["tools"]] == ["describe_table", "respond_with_json"]
    assert completion.structured is None
    assert [call.name for call in completion.tool_calls] == ["describe_table", "sample_rows"]


def test_a_response_schema_that_is_not_an_object_is_refused_before_any_call():
    server = ReplayServer()

    with pytest.raises(LLMError, match='"type" is "object"'):
        ask(make_provider(server), response_schema={"type": "array"})
    assert server.requests == []


def test_usage_of_each_call_is_accounted_on_the_meter():
    server = ReplayServer((200, "anthropic_text"), (200, "anthropic_tool_use"))
    meter = UsageMeter(prices={})
    provider = MeteredProvider(make_provider(server), meter)

    ask(provider)
    ask(provider, tools=[DESCRIBE_TABLE])

    assert (meter.calls, meter.input_tokens, meter.output_tokens) == (2, 318 + 1404, 27 + 96)


def test_rate_limit_is_retried_after_the_servers_retry_after_then_succeeds(sleeps):
    server = ReplayServer((429, "anthropic_rate_limit_error", {"retry-after": "7"}), (200, "anthropic_text"))

    completion = ask(make_provider(server))

    assert len(server.requests) == 2
    assert sleeps.delays == [7.0]
    assert completion.stop_reason == "end_turn"


def test_server_errors_and_overload_are_retried_with_growing_backoff(sleeps):
    server = ReplayServer((500, "anthropic_api_error"), (529, "anthropic_overloaded_error"), (200, "anthropic_text"))

    completion = ask(make_provider(server))

    assert completion.text
    assert len(server.requests) == 3
    first, second = sleeps.delays
    assert 0 < first < second


def test_bad_key_raises_at_once_with_a_clear_message_that_never_echoes_the_key():
    server = ReplayServer((401, "anthropic_authentication_error"))

    with pytest.raises(LLMError) as caught:
        ask(make_provider(server))

    error = caught.value
    assert len(server.requests) == 1
    assert (error.status, error.retryable) == (401, False)
    assert "ANTHROPIC_API_KEY" in str(error)
    assert FAKE_KEY not in str(error) and FAKE_KEY not in repr(error.args)
    assert error.__cause__ is None and error.__suppress_context__


def test_invalid_request_is_not_retried_and_explains_what_the_api_said():
    server = ReplayServer((400, "anthropic_invalid_request_error"))

    with pytest.raises(LLMError, match="unexpected tool_use_id") as caught:
        ask(make_provider(server))

    assert len(server.requests) == 1
    assert caught.value.retryable is False


def test_timeouts_are_retried_then_fail_with_a_retryable_error(sleeps):
    server = ReplayServer(TIMEOUT, TIMEOUT, TIMEOUT)

    with pytest.raises(LLMError, match="did not answer within 5s") as caught:
        ask(make_provider(server, max_retries=2))

    assert len(server.requests) == 3
    assert len(sleeps.delays) == 2
    assert caught.value.retryable is True and caught.value.status is None


def test_connection_errors_are_retried():
    server = ReplayServer(CONNECTION_REFUSED, (200, "anthropic_text"))

    assert ask(make_provider(server)).text
    assert len(server.requests) == 2


def test_provider_repr_does_not_reveal_the_key():
    provider = make_provider(ReplayServer())

    assert FAKE_KEY not in repr(provider)


def test_a_refusal_instead_of_the_structured_answer_is_an_error_not_an_empty_object():
    refusal = recording("anthropic_text")
    refusal["content"] = []
    refusal["stop_reason"] = "refusal"
    server = ReplayServer((200, refusal))

    with pytest.raises(LLMError, match="the model declined to answer") as caught:
        ask(make_provider(server), response_schema=ENDPOINT_SCHEMA)

    assert (caught.value.code, caught.value.retryable) == ("refused", False)
    assert len(server.requests) == 1
