"""Capabilities probed once per model, the structured-output fallbacks, repair turns and the context check.

Every test goes through a real adapter (the SDK with a fake key) against recorded-shape answers of
the servers Nectar meets: OpenAI, Anthropic, llama-cpp-python's server, Ollama.
"""

from __future__ import annotations

import json

import pytest

from agents.models import ModelCapability
from agents.providers import LLMError, Message, MeteredProvider, ToolCall, ToolSpec, UsageMeter, provider_for
from agents.providers.anthropic_provider import AnthropicProvider
from agents.providers.capabilities import Capabilities, CapabilityKey, MemoryCapabilityStore
from agents.providers.engine import extract_json_object
from agents.providers.openai_provider import OpenAIProvider
from agents.providers.registry import capability_probe_again
from tests.agents.recordings import FAKE_KEY, ReplayServer

LLAMA_SERVER = "http://127.0.0.1:8089/v1"
OLLAMA_SERVER = "http://127.0.0.1:11434/v1"
MODEL = "smollm2-135m-instruct"
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
    "required": ["path", "limit"],
}
ANSWER = {"path": "top-products", "limit": 10}
DESCRIBE = ToolSpec(
    name="describe_object",
    description="Columns, keys and sample values of one table or view.",
    input_schema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
)
# What llama-cpp-python's server publishes: a model list without a context window, and a tokenizer.
LLAMA_ROUTES = {
    "/v1/models": (200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "me"}]}),
    "/extras/tokenize/count": (200, {"count": 3}),
}


@pytest.fixture(autouse=True)
def sleeps(sdk_sleeps):
    return sdk_sleeps


@pytest.fixture
def platform_llama(settings):
    """The platform configured for a local llama-cpp-python server, as the README describes."""
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = LLAMA_SERVER
    settings.OPENAI_API_KEY = ""
    settings.LLM_MODEL = MODEL
    settings.LLM_CONTEXT_TOKENS = 0
    settings.OLLAMA_NUM_CTX = 0
    return settings


def chat(content: str | None = None, *, tool_calls=(), finish_reason: str = "stop", usage=(120, 30), **message):
    """A Chat Completions answer in the wire shape OpenAI and compatible servers send."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1764590000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    **({"tool_calls": list(tool_calls)} if tool_calls else {}),
                    **message,
                },
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def tool_call(name: str, arguments: dict | str, call_id: str = "call_1") -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def llama(server: ReplayServer, store=None, **kwargs) -> OpenAIProvider:
    kwargs.setdefault("model", MODEL)
    return OpenAIProvider(
        api_key=None, base_url=LLAMA_SERVER, timeout=5, max_retries=2, http_client=server.client(),
        capabilities=store, **kwargs,
    )  # fmt: skip


def ask(provider, content="Design the endpoint.", **kwargs):
    return provider.complete(
        messages=[Message("system", "You are Nectar's architect."), Message("user", content)], **kwargs
    )


UNSUPPORTED_TOOLS = (
    400,
    {"error": {"message": f"registry.ollama.ai/library/{MODEL} does not support tools", "type": "api_error"}},
)


# --- probing ----------------------------------------------------------------------------------


def test_a_compatible_server_is_probed_once_and_what_it_said_is_stored(platform_llama, db):
    server = ReplayServer(
        (500, "llamacpp_response_format_json_schema_500"),
        (200, chat(tool_calls=[tool_call("respond_with_json", {"ok": True})], finish_reason="tool_calls")),
        (200, chat('{"ok": true}')),
        (200, chat(tool_calls=[tool_call("respond_with_json", ANSWER)], finish_reason="tool_calls")),
        routes=LLAMA_ROUTES,
    )
    provider = provider_for(http_client=server.client())

    completion = ask(provider, response_schema=ANSWER_SCHEMA)

    assert completion.structured == ANSWER and completion.mode == "tools"
    row = ModelCapability.objects.get(provider_kind="openai", base_url=LLAMA_SERVER, model=MODEL)
    assert (row.json_schema, row.tool_calling, row.json_object) == (False, True, True)
    assert "Input should be 'text' or 'json_object'" in row.failures["json_schema"]
    assert row.tokenizer_url == "http://127.0.0.1:8089/extras/tokenize/count"
    assert row.server == "llama-cpp-python" and row.probed_at is not None
    assert row.probe_tokens == 2 * 150
    # The run's own call went straight to the forced tool: json_schema is not tried again.
    assert "response_format" not in server.body()

    again = provider_for(http_client=ReplayServer((200, chat('{"path": "x", "limit": 1}'))).client())
    assert again.capabilities.json_schema is False  # read from the row: no second probe


def test_admin_can_probe_a_model_again_with_the_platforms_credentials(platform_llama, db):
    ModelCapability.objects.create(
        provider_kind="openai", base_url=LLAMA_SERVER, model=MODEL, json_schema=True, tool_calling=False
    )
    server = ReplayServer(
        (500, "llamacpp_response_format_json_schema_500"),
        (200, chat(tool_calls=[tool_call("respond_with_json", {"ok": True})], finish_reason="tool_calls")),
        (200, chat('{"ok": true}')),
        routes=LLAMA_ROUTES,
    )

    found = capability_probe_again(key=CapabilityKey("openai", LLAMA_SERVER, MODEL), http_client=server.client())

    assert (found.json_schema, found.tool_calling, found.json_object) == (False, True, True)
    row = ModelCapability.objects.get(model=MODEL)
    assert (row.json_schema, row.tool_calling) == (False, True) and row.probed_at is not None


def test_probing_a_model_nobody_uses_any_more_says_so(platform_llama, db):
    with pytest.raises(LLMError, match="neither the platform settings nor any organization uses"):
        capability_probe_again(key=CapabilityKey("openai", "http://gone:1/v1", "old-model"))


def test_ollama_is_recognised_its_window_is_num_ctx_and_num_ctx_is_sent_with_every_request():
    store = MemoryCapabilityStore()
    server = ReplayServer(
        (200, chat('{"ok": true}')),
        (200, chat(tool_calls=[tool_call("respond_with_json", {"ok": True})], finish_reason="tool_calls")),
        (200, chat('{"ok": true}')),
        (200, chat('{"path": "top-products", "limit": 10}')),
        routes={
            "/api/version": (200, {"version": "0.12.3"}),
            "/api/show": (200, {"model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768}}),
        },
    )
    provider = OpenAIProvider(
        api_key=None, model="qwen2.5:7b", base_url=OLLAMA_SERVER, http_client=server.client(),
        capabilities=store, num_ctx=16384,
    )  # fmt: skip

    completion = ask(provider, response_schema=ANSWER_SCHEMA)

    assert completion.structured == ANSWER
    assert provider.capabilities.server == "ollama"
    assert provider.capabilities.context_length == 16384
    for request in server.conversation:
        assert json.loads(request.content)["options"] == {"num_ctx": 16384}


def test_without_num_ctx_ollama_is_taken_at_its_default_window():
    server = ReplayServer(
        (200, chat('{"ok": true}')),
        (200, chat(tool_calls=[tool_call("respond_with_json", {"ok": True})], finish_reason="tool_calls")),
        (200, chat('{"ok": true}')),
        routes={"/api/version": (200, {"version": "0.12.3"}), "/api/show": (200, {"model_info": {}})},
    )
    provider = OpenAIProvider(
        api_key=None, model="qwen2.5:7b", base_url=OLLAMA_SERVER, http_client=server.client(),
        capabilities=MemoryCapabilityStore(),
    )  # fmt: skip

    assert provider.capabilities.context_length == 4096
    assert all("options" not in json.loads(r.content) for r in server.conversation)


def test_vllm_publishes_its_window_in_the_model_list():
    server = ReplayServer(
        (200, chat('{"ok": true}')),
        (200, chat(tool_calls=[tool_call("respond_with_json", {"ok": True})], finish_reason="tool_calls")),
        (200, chat('{"ok": true}')),
        routes={
            "/v1/models": (200, {"data": [{"id": "Qwen/Qwen2.5-7B", "owned_by": "vllm", "max_model_len": 32768}]}),
        },
    )
    provider = OpenAIProvider(
        api_key=None, model="Qwen/Qwen2.5-7B", base_url="http://127.0.0.1:8000/v1", http_client=server.client(),
        capabilities=MemoryCapabilityStore(),
    )  # fmt: skip

    found = provider.capabilities

    assert (found.server, found.context_length) == ("vllm", 32768)
    assert (found.json_schema, found.tool_calling, found.json_object) == (True, True, True)


def test_openai_itself_is_not_sent_probe_requests():
    server = ReplayServer((200, "openai_structured"))
    provider = OpenAIProvider(
        api_key=FAKE_KEY, model="gpt-4.1-mini", http_client=server.client(), capabilities=MemoryCapabilityStore()
    )

    assert provider.capabilities.context_length == 1_047_576
    assert provider.capabilities.json_schema is True
    assert server.requests == []


def test_anthropics_window_comes_from_the_models_api():
    server = ReplayServer(
        routes={
            "/v1/models/claude-haiku-4-5": (
                200,
                {"id": "claude-haiku-4-5", "type": "model", "display_name": "Claude Haiku 4.5",
                 "created_at": "2025-10-01T00:00:00Z", "lifecycle": "active", "max_input_tokens": 180000},
            )
        }
    )  # fmt: skip
    provider = AnthropicProvider(
        api_key=FAKE_KEY, model="claude-haiku-4-5", http_client=server.client(), capabilities=MemoryCapabilityStore()
    )

    assert provider.capabilities.context_length == 180000
    assert provider.capabilities.tool_calling is True
    assert server.conversation == []


# --- the fallback chain --------------------------------------------------------------------------


def test_structured_output_falls_back_from_json_schema_to_tools_to_json_object_and_records_each_failure():
    store = MemoryCapabilityStore()
    server = ReplayServer(
        (500, "llamacpp_response_format_json_schema_500"),
        UNSUPPORTED_TOOLS,
        (200, chat('{"path": "top-products", "limit": 10}')),
    )
    provider = llama(server, store)
    provider._capabilities = Capabilities(probed=True)  # known to nobody yet: everything is tried

    completion = ask(provider, response_schema=ANSWER_SCHEMA)

    assert completion.structured == ANSWER
    assert completion.mode == "json_object" and completion.requests == 1
    bodies = [json.loads(r.content) for r in server.conversation]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[1]["tool_choice"]["function"]["name"] == "respond_with_json"
    assert bodies[2]["response_format"] == {"type": "json_object", "schema": ANSWER_SCHEMA}
    assert "JSON Schema" in bodies[2]["messages"][-1]["content"]
    saved = store.rows[provider.capability_key]
    assert (saved.json_schema, saved.tool_calling, saved.json_object) == (False, False, None)
    assert "does not support tools" in saved.failures["tool_calling"]


def test_when_no_mode_is_supported_the_plain_text_protocol_extracts_the_json_from_prose():
    server = ReplayServer(
        (200, chat('Here is the design:\n```json\n{"path": "top-products", "limit": 10}\n```\nHope it helps.'))
    )
    provider = llama(server)
    provider._capabilities = Capabilities(tool_calling=False, json_schema=False, json_object=False)

    completion = ask(provider, response_schema=ANSWER_SCHEMA)

    assert completion.structured == ANSWER and completion.mode == "text"
    body = server.body()
    assert "response_format" not in body and "tools" not in body
    assert json.dumps(ANSWER_SCHEMA, separators=(",", ":")) in body["messages"][-1]["content"]


def test_an_answer_that_is_not_json_goes_back_with_the_parse_error_then_is_repaired():
    server = ReplayServer(
        (200, chat('{"path": "top-products", "limit": 10')),
        (200, chat('{"path": "top-products", "limit": 10}')),
    )
    provider = llama(server)
    provider._capabilities = Capabilities(tool_calling=False, json_schema=False, json_object=False)

    completion = ask(provider, response_schema=ANSWER_SCHEMA)

    assert completion.structured == ANSWER
    assert (completion.requests, completion.usage.input_tokens) == (2, 240)
    repair = server.body()["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"path": "top-products", "limit": 10'}
    assert "not valid JSON" in repair[-1]["content"]


def test_repair_turns_are_bounded_and_the_failure_says_what_was_wrong():
    server = ReplayServer(*[(200, chat("I cannot produce JSON today."))] * 3)
    provider = llama(server, repair_turns=2)
    provider._capabilities = Capabilities(tool_calling=False, json_schema=False, json_object=False)
    meter = UsageMeter(prices={})

    with pytest.raises(
        LLMError, match=r"did not answer with a JSON object in 3 tries \(it is not valid JSON"
    ) as caught:
        ask(MeteredProvider(provider, meter), response_schema=ANSWER_SCHEMA)

    assert caught.value.code == "invalid_output"
    assert len(server.conversation) == 3
    # The failed attempts still count against the budget.
    assert (meter.input_tokens, meter.failed_calls) == (360, 1)


def test_a_model_without_tool_calling_gets_its_tools_in_the_prompt_and_its_json_becomes_tool_calls():
    server = ReplayServer(
        UNSUPPORTED_TOOLS,
        (200, chat('{"action": "call_tool", "tool": "describe_object", "arguments": {"name": "orders"}}')),
        (200, chat('{"action": "answer", "answer": "orders holds one row per order"}')),
    )
    provider = llama(server)
    provider._capabilities = Capabilities(json_schema=False, json_object=False)
    history = [Message("system", "You are Nectar's explorer."), Message("user", "Which table holds orders?")]

    thought = provider.complete(messages=history, tools=[DESCRIBE])

    assert [(c.name, c.arguments) for c in thought.tool_calls] == [("describe_object", {"name": "orders"})]
    assert provider.capabilities.tool_calling is False
    history += [
        Message("assistant", "", tool_calls=thought.tool_calls),
        Message("tool", '{"columns": ["id", "total"]}', tool_call_id=thought.tool_calls[0].id, name="describe_object"),
    ]
    final = provider.complete(messages=history, tools=[DESCRIBE])

    assert final.text == "orders holds one row per order" and final.tool_calls == ()
    sent = server.body()["messages"]
    assert "tools" not in server.body()
    assert "describe_object: Columns, keys and sample values" in sent[0]["content"]
    assert sent[2] == {
        "role": "assistant",
        "content": '{"action": "call_tool", "tool": "describe_object", "arguments": {"name": "orders"}}',
    }
    assert sent[3] == {"role": "user", "content": 'Result of describe_object: {"columns": ["id", "total"]}'}


def test_a_compatible_server_is_asked_for_tool_calls_explicitly():
    server = ReplayServer((200, chat(tool_calls=[tool_call("describe_object", {"name": "orders"})])))

    ask(llama(server), tools=[DESCRIBE])

    assert server.body()["tool_choice"] == "auto"


# --- truncation and refusals -----------------------------------------------------------------------


def test_a_structured_answer_cut_off_by_max_tokens_is_asked_again_with_twice_the_room():
    server = ReplayServer(
        (200, chat('{"path": "top-pro', finish_reason="length")),
        (200, chat('{"path": "top-products", "limit": 10}')),
    )
    provider = llama(server)
    provider._capabilities = Capabilities(tool_calling=False, json_schema=False, json_object=False)

    completion = ask(provider, response_schema=ANSWER_SCHEMA, max_tokens=300)

    assert completion.structured == ANSWER
    assert [json.loads(r.content)["max_tokens"] for r in server.conversation] == [300, 600]


def test_tool_call_arguments_cut_off_by_max_tokens_are_asked_again_not_parsed():
    server = ReplayServer(
        (200, chat(tool_calls=[tool_call("describe_object", '{"name": "ord')], finish_reason="length")),
        (200, chat(tool_calls=[tool_call("describe_object", {"name": "orders"})], finish_reason="tool_calls")),
    )

    completion = ask(llama(server), tools=[DESCRIBE], max_tokens=100)

    assert completion.tool_calls == (ToolCall(id="call_1", name="describe_object", arguments={"name": "orders"}),)
    assert json.loads(server.conversation[1].content)["max_tokens"] == 200


def test_an_answer_cut_off_every_time_fails_clearly():
    cut = (200, chat('{"path": "', finish_reason="length"))
    server = ReplayServer(cut, cut, cut, cut)
    provider = llama(server, repair_turns=2, max_output_tokens=400)
    provider._capabilities = Capabilities(tool_calling=False, json_schema=False, json_object=False)

    with pytest.raises(LLMError, match="cut off at 400 tokens 4 times in a row") as caught:
        ask(provider, response_schema=ANSWER_SCHEMA, max_tokens=200)

    assert caught.value.code == "truncated"
    assert "more briefly" in server.body()["messages"][-1]["content"]


def test_a_refusal_is_a_clear_error_that_is_not_retried():
    server = ReplayServer((200, chat(None, refusal="I can't help with exporting personal data.")))

    with pytest.raises(LLMError, match="the model declined to answer: I can't help") as caught:
        ask(llama(server), response_schema=ANSWER_SCHEMA)

    assert (caught.value.code, caught.value.retryable, len(server.conversation)) == ("refused", False, 1)


def test_an_answer_stopped_by_the_content_filter_is_a_refusal():
    server = ReplayServer((200, chat("", finish_reason="content_filter")))

    with pytest.raises(LLMError, match="content filter") as caught:
        ask(llama(server))

    assert caught.value.code == "refused"


# --- the context window ---------------------------------------------------------------------------


def test_a_prompt_that_cannot_fit_the_window_is_refused_before_anything_is_sent():
    server = ReplayServer()
    provider = llama(server, context_length=2048)
    provider._capabilities = Capabilities(tool_calling=True)

    with pytest.raises(LLMError) as caught:
        ask(provider, content="orders " * 2000, max_tokens=500)

    message = str(caught.value)
    assert caught.value.code == "context_length"
    assert "context window of 2,048 tokens" in message
    assert "estimated from 14,027 characters at 3.5 characters per token plus 15%" in message
    assert "about 4," in message  # the estimated prompt size, in tokens
    assert server.requests == []


def test_near_the_limit_the_servers_tokenizer_counts_exactly_and_max_tokens_is_trimmed_to_the_room():
    server = ReplayServer((200, chat("ok")), routes={"/extras/tokenize/count": (200, {"count": 1500})})
    provider = llama(server, context_length=2048)
    provider._capabilities = Capabilities(tool_calling=True, tokenizer="http://127.0.0.1:8089/extras/tokenize/count")

    ask(provider, content="orders " * 700, max_tokens=1000)

    counted = [r for r in server.requests if r.url.path == "/extras/tokenize/count"]
    assert len(counted) == 1 and "orders orders" in json.loads(counted[0].content)["input"]
    assert server.body()["max_tokens"] == 2048 - 1500 - 2 * 8


def test_a_window_the_server_names_in_its_error_is_learned_and_checked_before_the_next_call():
    store = MemoryCapabilityStore()
    server = ReplayServer((400, "llamacpp_context_length_exceeded"))
    provider = llama(server, store)
    provider._capabilities = Capabilities(tool_calling=True)

    with pytest.raises(LLMError) as first:
        ask(provider, content="orders " * 1200, max_tokens=500)
    assert str(first.value).startswith(
        "the prompt for smollm2-135m-instruct is 2,171 tokens (as the server counted them), too long for the "
        "model's context window of 2,048 tokens. Use a model with a larger context window"
    )
    with pytest.raises(LLMError, match="context window of 2,048 tokens") as caught:
        ask(provider, content="orders " * 1200, max_tokens=500)

    assert "estimated from" in str(caught.value)
    assert len(server.conversation) == 1
    assert store.rows[provider.capability_key].context_length == 2048


def test_anthropics_token_counter_is_used_near_the_limit():
    server = ReplayServer(
        (200, "anthropic_text"),
        routes={"/v1/messages/count_tokens": (200, {"input_tokens": 9000})},
    )
    provider = AnthropicProvider(
        api_key=FAKE_KEY, model="claude-sonnet-4-6", http_client=server.client(), context_length=10_000
    )
    provider._capabilities = Capabilities(tool_calling=True, tokenizer="count_tokens")

    ask(provider, content="orders " * 3000, max_tokens=2000)

    assert server.body()["max_tokens"] == 10_000 - 9000 - 2 * 8
    counted = [r for r in server.requests if r.url.path == "/v1/messages/count_tokens"]
    assert "max_tokens" not in json.loads(counted[0].content)


def test_a_fragment_of_a_broken_json_answer_is_not_taken_for_the_answer():
    broken = '{"relevant_objects": [{"object": "customers", "reason": "region"}], "summary": "found"'

    value, problem = extract_json_object(broken)

    assert value is None and "not valid JSON" in problem
    assert extract_json_object('Here it is: {"a": {"b": 1}} as asked') == ({"a": {"b": 1}}, "")
    assert extract_json_object('```json\n{"a": "}{"}\n```') == ({"a": "}{"}, "")
