"""The OpenAI adapter against recorded-shape Chat Completions answers, official and compatible servers."""

from __future__ import annotations

import json
import re

import pytest

from agents.providers import LLMError, Message, MeteredProvider, ToolCall, ToolSpec, UsageMeter
from agents.providers.openai_provider import OpenAIProvider
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
# Closed and fully required: OpenAI's strict mode can enforce it.
ENDPOINT_SCHEMA = {
    "type": "object",
    "properties": {
        "method": {"type": "string", "enum": ["GET", "POST"]},
        "path": {"type": "string"},
        "read_only": {"type": "boolean"},
        "parameters": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["method", "path", "read_only", "parameters"],
    "additionalProperties": False,
}
EXPECTED_ENDPOINT = {
    "method": "GET",
    "path": "/customers/{id}/orders",
    "read_only": True,
    "parameters": ["id", "since"],
}
LOCAL_SERVER = "http://127.0.0.1:11434/v1"


@pytest.fixture(autouse=True)
def sleeps(sdk_sleeps):
    return sdk_sleeps


def make_provider(server: ReplayServer, *, max_retries: int = 3, **kwargs) -> OpenAIProvider:
    kwargs.setdefault("api_key", FAKE_KEY)
    kwargs.setdefault("model", "gpt-4.1-mini")
    return OpenAIProvider(timeout=5, max_retries=max_retries, http_client=server.client(), **kwargs)


def ask(provider, **kwargs):
    return provider.complete(messages=[Message(role="user", content="Which tables hold orders?")], **kwargs)


def test_request_carries_model_messages_tools_and_the_configured_key():
    server = ReplayServer((200, "openai_text"))

    make_provider(server).complete(
        messages=[
            Message(role="system", content="You are Nectar's explorer."),
            Message(role="user", content="Describe orders."),
            Message(
                role="assistant",
                content="",
                tool_calls=(ToolCall(id="call_1", name="describe_table", arguments={"table": "orders"}),),
            ),
            Message(role="tool", content='{"columns": ["id"]}', tool_call_id="call_1", name="describe_table"),
        ],
        tools=[DESCRIBE_TABLE],
        temperature=0.1,
        max_tokens=700,
    )

    request = server.requests[0]
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert request.headers.get("x-stainless-retry-count") == "0"
    body = server.body()
    assert body["model"] == "gpt-4.1-mini"
    assert body["temperature"] == 0.1
    assert body["max_completion_tokens"] == 700
    assert body["messages"] == [
        {"role": "system", "content": "You are Nectar's explorer."},
        {"role": "user", "content": "Describe orders."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "describe_table", "arguments": '{"table": "orders"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"columns": ["id"]}'},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "describe_table",
                "description": DESCRIBE_TABLE.description,
                "parameters": DESCRIBE_TABLE.input_schema,
            },
        }
    ]
    assert "response_format" not in body


def test_text_answer_becomes_a_completion_with_usage_and_model():
    completion = ask(make_provider(ReplayServer((200, "openai_text"))))

    assert completion.text == "The orders table holds one row per order."
    assert completion.tool_calls == () and completion.structured is None
    assert completion.stop_reason == "stop"
    assert completion.model == "gpt-4.1-mini-2025-04-14"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (291, 11)


def test_tool_calls_with_json_string_arguments_become_nectar_tool_calls():
    completion = ask(make_provider(ReplayServer((200, "openai_tool_calls"))), tools=[DESCRIBE_TABLE])

    assert completion.stop_reason == "tool_calls"
    assert completion.text == ""
    assert completion.tool_calls == (
        ToolCall(
            id="call_FthC9qRpsL5kBpwwyw6c7j4k", name="describe_table", arguments={"schema": "public", "table": "orders"}
        ),
        ToolCall(id="call_Ky3nPq8RtV2wXz5aBc7dEf9g", name="sample_rows", arguments={"table": "orders", "limit": 5}),
    )


def test_structured_output_uses_a_strict_json_schema_response_format():
    server = ReplayServer((200, "openai_structured"))

    completion = ask(make_provider(server), response_schema=ENDPOINT_SCHEMA)

    assert server.body()["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": ENDPOINT_SCHEMA, "strict": True},
    }
    assert completion.structured == EXPECTED_ENDPOINT


def test_a_schema_strict_mode_cannot_enforce_is_sent_without_strict():
    server = ReplayServer((200, "openai_structured"))
    open_schema = {"type": "object", "properties": {"method": {"type": "string"}}}

    ask(make_provider(server), response_schema=open_schema)

    assert server.body()["response_format"]["json_schema"]["strict"] is False


def test_server_without_json_schema_support_falls_back_to_a_forced_tool_and_remembers():
    server = ReplayServer(
        (400, "openai_compatible_response_format_unsupported"),
        (200, "openai_compatible_structured_tool"),
        (200, "openai_compatible_structured_tool"),
    )
    provider = make_provider(server, api_key=None, model="qwen2.5-coder:7b", base_url=LOCAL_SERVER)

    first = ask(provider, response_schema=ENDPOINT_SCHEMA)
    second = ask(provider, response_schema=ENDPOINT_SCHEMA)

    assert first.structured == EXPECTED_ENDPOINT and second.structured == EXPECTED_ENDPOINT
    assert first.tool_calls == ()
    bodies = [json.loads(request.content) for request in server.requests]
    assert "response_format" in bodies[0]
    for body in bodies[1:]:
        assert "response_format" not in body
        assert body["tool_choice"] == {"type": "function", "function": {"name": "respond_with_json"}}
        assert body["tools"][-1]["function"]["parameters"] == ENDPOINT_SCHEMA
    assert provider.capabilities.json_schema is False
    assert "json_schema" in provider.capabilities.failures["json_schema"]


def test_openai_base_url_reaches_a_compatible_server_with_its_own_conventions():
    server = ReplayServer((200, "openai_text"))
    provider = make_provider(server, api_key=None, model="qwen2.5-coder:7b", base_url=LOCAL_SERVER)

    ask(provider, max_tokens=300)

    request = server.requests[0]
    assert str(request.url) == f"{LOCAL_SERVER}/chat/completions"
    assert request.headers["authorization"] == "Bearer not-needed"
    body = server.body()
    assert body["model"] == "qwen2.5-coder:7b"
    assert body["max_tokens"] == 300 and "max_completion_tokens" not in body


def test_reasoning_models_are_not_sent_a_temperature():
    server = ReplayServer((200, "openai_text"))

    ask(make_provider(server, model="o4-mini"), temperature=0.7)

    assert "temperature" not in server.body()


def test_usage_of_each_call_is_accounted_on_the_meter():
    server = ReplayServer((200, "openai_text"), (200, "openai_tool_calls"))
    meter = UsageMeter(prices={})
    provider = MeteredProvider(make_provider(server), meter)

    ask(provider)
    ask(provider, tools=[DESCRIBE_TABLE])

    assert meter.as_dict()["by_model"] == {
        "gpt-4.1-mini-2025-04-14": {"calls": 2, "input_tokens": 291 + 1180, "output_tokens": 11 + 58, "cost_usd": None}
    }


def test_rate_limit_is_retried_after_the_servers_retry_after_then_succeeds(sleeps):
    server = ReplayServer((429, "openai_rate_limit_error", {"retry-after": "2"}), (200, "openai_text"))

    completion = ask(make_provider(server))

    assert len(server.requests) == 2
    assert sleeps.delays == [2.0]
    assert completion.text


def test_retry_after_in_milliseconds_is_honoured_too(sleeps):
    server = ReplayServer((429, "openai_rate_limit_error", {"retry-after-ms": "120"}), (200, "openai_text"))

    ask(make_provider(server))

    assert sleeps.delays == [pytest.approx(0.12)]


def test_server_errors_are_retried_until_the_retry_limit_then_reported_as_retryable():
    server = ReplayServer((500, "openai_server_error"), (502, "openai_server_error"), (503, "openai_server_error"))

    with pytest.raises(LLMError, match="server error") as caught:
        ask(make_provider(server, max_retries=2))

    assert len(server.requests) == 3
    assert (caught.value.status, caught.value.retryable) == (503, True)


def test_bad_key_raises_at_once_with_a_clear_message_that_never_echoes_the_key():
    server = ReplayServer((401, "openai_invalid_api_key_error"))

    with pytest.raises(LLMError) as caught:
        ask(make_provider(server))

    error = caught.value
    assert len(server.requests) == 1
    assert (error.status, error.retryable) == (401, False)
    assert "OPENAI_API_KEY" in str(error)
    assert FAKE_KEY not in str(error)


def test_invalid_request_detail_is_reported_with_any_key_redacted():
    server = ReplayServer((400, "openai_invalid_request_error"))

    with pytest.raises(LLMError, match="must be a response to a preceeding message") as caught:
        ask(make_provider(server))

    assert len(server.requests) == 1
    assert caught.value.retryable is False


@pytest.mark.parametrize("status", [403, 404])
def test_permission_and_not_found_errors_are_not_retried(status):
    server = ReplayServer((status, "openai_invalid_request_error"))

    with pytest.raises(LLMError, match=re.escape("'gpt-4.1-mini'")) as caught:
        ask(make_provider(server))

    assert len(server.requests) == 1
    assert (caught.value.status, caught.value.retryable) == (status, False)


def test_timeouts_are_retried_then_fail_with_a_retryable_error(sleeps):
    server = ReplayServer(TIMEOUT, TIMEOUT, TIMEOUT)

    with pytest.raises(LLMError, match="did not answer within 5s") as caught:
        ask(make_provider(server, max_retries=2))

    assert len(server.requests) == 3 and len(sleeps.delays) == 2
    assert caught.value.retryable is True


def test_an_unreachable_compatible_server_is_named_in_the_error():
    server = ReplayServer(CONNECTION_REFUSED, CONNECTION_REFUSED)

    with pytest.raises(LLMError, match=re.escape(f"could not reach {LOCAL_SERVER}")) as caught:
        ask(make_provider(server, api_key=None, base_url=LOCAL_SERVER, max_retries=1))

    assert caught.value.retryable is True


def test_a_provider_needs_a_key_unless_it_talks_to_a_compatible_server():
    with pytest.raises(LLMError, match="API key is required"):
        OpenAIProvider(api_key="", model="gpt-4.1-mini")


def test_a_servers_error_text_that_echoes_the_key_is_redacted():
    server = ReplayServer((422, "openai_compatible_error_echoing_key"))

    with pytest.raises(LLMError, match="is not loaded for api key") as caught:
        ask(make_provider(server, base_url=LOCAL_SERVER, model="qwen2.5-coder:7b"))

    assert FAKE_KEY not in str(caught.value)
    assert "[redacted]" in str(caught.value)


def test_tool_arguments_that_are_not_json_go_back_to_the_model_with_the_parse_error():
    broken = recording("openai_tool_calls")
    broken["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"table": "orders"'
    server = ReplayServer((200, broken), (200, "openai_tool_calls"))

    completion = ask(make_provider(server), tools=[DESCRIBE_TABLE])

    assert [call.name for call in completion.tool_calls] == ["describe_table", "sample_rows"]
    repair = server.body()["messages"][-1]
    assert repair["role"] == "user"
    assert "arguments for describe_table that is not valid JSON" in repair["content"]
    assert (completion.requests, completion.usage.input_tokens) == (2, 2 * 1180)


def test_tool_arguments_still_broken_after_the_repair_turns_fail_clearly():
    broken = recording("openai_tool_calls")
    broken["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "describe orders"
    server = ReplayServer((200, broken), (200, broken), (200, broken))

    with pytest.raises(LLMError, match="arguments for describe_table that is not valid JSON") as caught:
        ask(make_provider(server), tools=[DESCRIBE_TABLE])

    assert (caught.value.code, caught.value.retryable) == ("invalid_output", False)
    assert caught.value.requests == 3 and caught.value.usage.input_tokens == 3 * 1180


def test_a_server_error_with_a_validation_message_is_not_retried_and_falls_back_at_once(sleeps):
    server = ReplayServer(
        (500, "llamacpp_response_format_json_schema_500"),
        (200, "openai_compatible_structured_tool"),
    )
    provider = make_provider(server, api_key=None, model="smollm2", base_url=LOCAL_SERVER)

    completion = ask(provider, response_schema=ENDPOINT_SCHEMA)

    assert completion.structured == EXPECTED_ENDPOINT
    assert len(server.requests) == 2 and sleeps.delays == []
    assert "response_format" not in server.body()


def test_a_server_error_without_such_a_message_is_still_transient(sleeps):
    server = ReplayServer((500, "openai_server_error"), (200, "openai_text"))

    assert ask(make_provider(server, base_url=LOCAL_SERVER)).text
    assert len(sleeps.delays) == 1


def test_a_prompt_the_server_says_is_too_long_fails_at_once_naming_the_context():
    server = ReplayServer((400, "llamacpp_context_length_exceeded"))

    expected = r"is 2,171 tokens .as the server counted them.+window of 2,048 tokens"
    with pytest.raises(LLMError, match=expected) as caught:
        ask(make_provider(server, api_key=None, model="smollm2", base_url=LOCAL_SERVER))

    assert (caught.value.code, caught.value.retryable) == ("context_length", False)
    assert len(server.requests) == 1


@pytest.mark.parametrize(("base_url", "content"), [(None, None), (LOCAL_SERVER, "")])
def test_an_assistant_turn_of_only_tool_calls_has_the_content_each_server_accepts(base_url, content):
    # llama-cpp-python's server answers 500 to a null content next to tool_calls; OpenAI takes null.
    server = ReplayServer((200, "openai_text"))
    provider = make_provider(server, base_url=base_url)

    provider.complete(
        messages=[
            Message(role="user", content="Describe orders."),
            Message(role="assistant", tool_calls=(ToolCall(id="call_1", name="describe_table", arguments={}),)),
            Message(role="tool", content="{}", tool_call_id="call_1", name="describe_table"),
        ],
        tools=[DESCRIBE_TABLE],
    )

    assistant = server.body()["messages"][1]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_1"
    assert assistant["content"] == content
