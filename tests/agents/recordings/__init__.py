"""Recorded-shape LLM API answers and a tiny in-process server that replays them (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2

HERE = Path(__file__).parent
FAKE_KEY = "sk-test-not-real"
TIMEOUT = "timeout"
CONNECTION_REFUSED = "connection-refused"


def recording(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


NOT_FOUND = (404, {"detail": "Not Found"})
CONVERSATION_PATHS = ("/chat/completions", "/v1/messages")


class ReplayServer:
    """Answers each conversation request (chat completions, messages) with the next reply.

    A reply is (status, recording name or body[, headers]), TIMEOUT or CONNECTION_REFUSED. Other
    paths (a probe's /v1/models, /api/version, tokenizers) are answered from `routes`, by path,
    as often as they are asked, and 404 when they are not there.
    """

    def __init__(self, *replies: tuple | str, routes: dict[str, tuple] | None = None) -> None:
        self.replies = list(replies)
        self.routes = dict(routes or {})
        self.requests: list[httpx2.Request] = []

    @property
    def conversation(self) -> list[httpx2.Request]:
        return [r for r in self.requests if r.url.path.endswith(CONVERSATION_PATHS)]

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if not request.url.path.endswith(CONVERSATION_PATHS):
            return self._reply(self.routes.get(request.url.path, NOT_FOUND), request)
        if not self.replies:
            raise AssertionError(f"unexpected extra request to {request.url}")
        return self._reply(self.replies.pop(0), request)

    def _reply(self, reply: tuple | str, request: httpx2.Request) -> httpx2.Response:
        if reply == TIMEOUT:
            raise httpx2.ReadTimeout("timed out", request=request)
        if reply == CONNECTION_REFUSED:
            raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)
        status, body, *rest = reply
        body = recording(body) if isinstance(body, str) else body
        return httpx2.Response(status, json=body, headers=rest[0] if rest else {})

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self._handle))

    def body(self, index: int = -1) -> dict[str, Any]:
        """The JSON body of a conversation request (the last by default)."""
        return json.loads(self.conversation[index].content)


class SleepRecorder:
    """Stands in for the SDKs' time.sleep so their retry backoff is observed, not waited for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
