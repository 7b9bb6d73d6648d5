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


class ReplayServer:
    """Answers each request with the next reply.

    A reply is (status, recording name or body[, headers]), TIMEOUT or CONNECTION_REFUSED.
    """

    def __init__(self, *replies: tuple | str) -> None:
        self.replies = list(replies)
        self.requests: list[httpx2.Request] = []

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected extra request to {request.url}")
        reply = self.replies.pop(0)
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
        return json.loads(self.requests[index].content)


class SleepRecorder:
    """Stands in for the SDKs' time.sleep so their retry backoff is observed, not waited for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
