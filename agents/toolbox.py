"""The agents' hands: MCP tools of the Role's server, called through the official MCP client.

The client talks to the Role's own server in-process (memory streams), so every call goes
through exactly what an external MCP client gets: the Role's tools, its permission checks and
the tool-call log. An agent can never do more than the Role allows.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from anyio.from_thread import start_blocking_portal

from mcpservers.server import instance_server


@dataclass(frozen=True)
class ToolInfo:
    name: str
    title: str
    description: str
    input_schema: dict
    read_only: bool
    destructive: bool


@dataclass(frozen=True)
class ToolOutcome:
    name: str
    arguments: dict
    ok: bool
    structured: dict | None
    text: str
    error: str = ""
    rows: int | None = None
    meta: dict = field(default_factory=dict)

    def summary(self, limit: int = 1500) -> str:
        if not self.ok:
            return f"ERROR: {self.error}"
        body = json.dumps(self.structured, default=str) if self.structured is not None else self.text
        return body if len(body) <= limit else body[:limit] + f"... ({len(body)} characters in all)"


class McpToolbox:
    """A live MCP client session on one instance, usable from synchronous code."""

    def __init__(self, *, instance, server_label: str | None = None):
        self.instance = instance
        self.server_label = server_label or f"nectar-{instance.role.name}"
        self._stack: ExitStack | None = None
        self._portal = None
        self._client = None
        self.tools: list[ToolInfo] = []

    def __enter__(self) -> McpToolbox:
        from mcp import Client

        stack = ExitStack()
        try:
            self._portal = stack.enter_context(start_blocking_portal())
            server = instance_server(instance=self.instance, api_key=None, agent=True)
            self._client = stack.enter_context(self._portal.wrap_async_context_manager(Client(server)))
            listed = self._portal.call(self._client.list_tools)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        self.tools = [_tool_info(tool) for tool in listed.tools]
        return self

    def __exit__(self, *exc_info) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def tool(self, name: str) -> ToolInfo | None:
        return next((t for t in self.tools if t.name == name), None)

    def read_only_tools(self) -> list[ToolInfo]:
        return [t for t in self.tools if t.read_only]

    def call(self, name: str, arguments: dict | None = None, *, allowed: list[ToolInfo] | None = None) -> ToolOutcome:
        arguments = dict(arguments or {})
        pool = allowed if allowed is not None else self.tools
        if not any(t.name == name for t in pool):
            return ToolOutcome(name, arguments, False, None, "", error=f"tool {name!r} is not available to this agent")
        try:
            result = self._portal.call(self._client.call_tool, name, arguments)
        except Exception as exc:  # a protocol-level failure is an observation too, not a crash
            return ToolOutcome(name, arguments, False, None, "", error=f"the tool call failed: {exc}"[:1000])
        text = "\n".join(getattr(block, "text", "") for block in result.content or [] if getattr(block, "text", None))
        structured = result.structured_content
        if result.is_error:
            return ToolOutcome(name, arguments, False, structured, text, error=text or "the tool failed")
        rows = structured.get("row_count") if isinstance(structured, dict) else None
        return ToolOutcome(name, arguments, True, structured, text, rows=rows)


def _tool_info(tool) -> ToolInfo:
    annotations = tool.annotations
    return ToolInfo(
        name=tool.name,
        title=tool.title or tool.name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema or {}),
        read_only=bool(annotations and annotations.read_only_hint),
        destructive=bool(annotations and annotations.destructive_hint),
    )


def tool_catalog(tools: list[ToolInfo]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "read_only": t.read_only} for t in tools]
