"""Recorded multi-turn tool-use conversations of Claude and GPT, replayed at the HTTP boundary.

A transcript (a JSON file beside this module) holds, for each agent of a run, the answers the
vendor gave, in the exact wire shape of its API (Anthropic Messages: content blocks, tool_use,
stop_reason; OpenAI Chat Completions: tool_calls, finish_reason, refusal), and what Nectar's
request must carry before each answer (the tools offered, the tool results of the previous
turn, a structured-output request, words of the prompt). The replay server routes each request
to its agent by the agent's system prompt and answers with that agent's next turn, so the real
SDK and adapter do all the work; a request that does not carry what the recording expects is
answered with an HTTP 400 that names the difference and is kept in `problems`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2

HERE = Path(__file__).parent
CONVERSATION_PATHS = ("/chat/completions", "/v1/messages")
# How each agent's system prompt starts (agents/specialists.py).
AGENT_PROMPTS = {
    "explorer": "You are a database exploration agent",
    "architect": "You are an API architect",
    "security": "You are a security reviewer",
    "implementer": "You are an implementer",
    "tester": "You are a tester",
    "documenter": "You are a technical writer",
}


def transcript(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


class TranscriptServer:
    """Replays one transcript; `problems` lists every request that differed from the recording."""

    def __init__(self, recorded: dict[str, Any]) -> None:
        self.vendor = recorded["vendor"]
        if self.vendor not in ("anthropic", "openai"):
            raise ValueError(f"a transcript's vendor is anthropic or openai, not {self.vendor!r}")
        self.turns = {agent: list(turns) for agent, turns in recorded["agents"].items()}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.problems: list[str] = []

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self._handle))

    def remaining(self) -> dict[str, int]:
        return {agent: len(turns) for agent, turns in self.turns.items() if turns}

    def asked(self, agent: str) -> list[dict[str, Any]]:
        return [body for who, body in self.requests if who == agent]

    # --- the server ----------------------------------------------------------------------------
    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        if not request.url.path.endswith(CONVERSATION_PATHS):
            return httpx2.Response(404, json={"error": {"type": "not_found_error", "message": "Not Found"}})
        body = json.loads(request.content)
        agent = self._agent_of(body)
        self.requests.append((agent, body))
        turns = self.turns.get(agent) or []
        if not turns:
            return self._refuse(
                f"the {agent} asked a {len(self.asked(agent))}th time; the transcript has no more turns"
            )
        turn = turns.pop(0)
        differences = self._differences(turn.get("expect") or {}, body)
        if differences:
            return self._refuse(f"{agent} turn {len(self.asked(agent))}: " + "; ".join(differences))
        return httpx2.Response(turn.get("status", 200), json=turn["response"], headers=turn.get("headers") or {})

    def _refuse(self, problem: str) -> httpx2.Response:
        self.problems.append(problem)
        error = {"type": "invalid_request_error", "message": f"transcript mismatch: {problem}"}
        return httpx2.Response(
            400, json={"type": "error", "error": error} if self.vendor == "anthropic" else {"error": error}
        )

    def _system(self, body: dict[str, Any]) -> str:
        if self.vendor == "anthropic":
            system = body.get("system") or ""
            return system if isinstance(system, str) else " ".join(block.get("text", "") for block in system)
        return " ".join(m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system")

    def _agent_of(self, body: dict[str, Any]) -> str:
        system = self._system(body)
        for agent, opening in AGENT_PROMPTS.items():
            if opening in system:
                return agent
        return "unknown"

    # --- what a request must carry -------------------------------------------------------------
    def _tools_offered(self, body: dict[str, Any]) -> list[str]:
        if self.vendor == "anthropic":
            return [tool["name"] for tool in body.get("tools", [])]
        return [tool["function"]["name"] for tool in body.get("tools", [])]

    def _tool_results(self, body: dict[str, Any]) -> dict[str, str]:
        results: dict[str, str] = {}
        for message in body.get("messages", []):
            if self.vendor == "openai":
                if message.get("role") == "tool":
                    results[message["tool_call_id"]] = message.get("content") or ""
                continue
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "tool_result":
                    text = block.get("content")
                    results[block["tool_use_id"]] = text if isinstance(text, str) else json.dumps(text)
        return results

    def _asks_structured(self, body: dict[str, Any]) -> bool:
        choice = body.get("tool_choice")
        if self.vendor == "anthropic":
            return isinstance(choice, dict) and choice.get("type") in ("tool", "any")
        forced = isinstance(choice, dict) or choice == "required"
        return forced or (body.get("response_format") or {}).get("type") in ("json_schema", "json_object")

    def _text(self, body: dict[str, Any]) -> str:
        return json.dumps(body, ensure_ascii=False)

    def _differences(self, expect: dict[str, Any], body: dict[str, Any]) -> list[str]:
        problems = []
        offered = self._tools_offered(body)
        for name in expect.get("tools", []):
            if name not in offered:
                problems.append(f"tool {name!r} was not offered (offered: {offered})")
        if expect.get("no_tools") and offered:
            problems.append(f"no tools were expected, got {offered}")
        results = self._tool_results(body)
        for call_id, words in (expect.get("tool_results") or {}).items():
            if call_id not in results:
                problems.append(f"no tool result for {call_id} (results for: {list(results)})")
            elif words and words not in results[call_id]:
                problems.append(f"the result of {call_id} does not mention {words!r}")
        if "structured" in expect and self._asks_structured(body) != expect["structured"]:
            problems.append("a structured answer was " + ("not " if expect["structured"] else "") + "asked for")
        text = self._text(body)
        for words in expect.get("prompt_contains", []):
            if words not in text:
                problems.append(f"the request does not mention {words!r}")
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        if limit < expect.get("max_tokens_at_least", 0):
            problems.append(f"max_tokens is {limit}, expected at least {expect['max_tokens_at_least']}")
        return problems
