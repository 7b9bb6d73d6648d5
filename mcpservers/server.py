"""Low-level MCP Server objects for one authorised caller, shared by Streamable HTTP and stdio."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
from django.db import close_old_connections
from mcp.server.lowlevel import Server

from mcpservers.services import ToolResult, tool_call
from mcpservers.toolgen import tools_listed

SERVER_VERSION = "1.0"


def call_result(result: ToolResult) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.text)],
        structured_content=result.structured,
        is_error=result.is_error,
    )


async def _in_thread(function: Callable[..., Any], /, **kwargs) -> Any:
    def run():
        try:
            return function(**kwargs)
        finally:
            close_old_connections()

    return await anyio.to_thread.run_sync(functools.partial(run))


def build_server(
    *,
    name: str,
    instructions: str,
    list_tools: Callable[[], list[dict]],
    call: Callable[..., ToolResult],
) -> Server:
    """A Server whose tools come from `list_tools()` (public definitions) and run through `call(name, arguments)`.

    Both callables are synchronous (they use the ORM) and run in a worker thread.
    """

    async def on_list_tools(ctx, params) -> types.ListToolsResult:
        listed = await _in_thread(list_tools)
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in listed])

    async def on_call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        result = await _in_thread(call, name=params.name, arguments=dict(params.arguments or {}))
        return call_result(result)

    return Server(
        name,
        version=SERVER_VERSION,
        title=name,
        instructions=instructions,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def instance_server(*, instance, api_key) -> Server:
    """The MCP server of one Role's instance, as seen through one API key."""
    role = instance.role
    tools = list(instance.tools or [])

    def list_tools() -> list[dict]:
        return tools_listed(tools)

    def call(*, name: str, arguments: dict) -> ToolResult:
        return tool_call(instance=instance, api_key=api_key, name=name, arguments=arguments)

    return build_server(
        name=f"nectar-{role.name}",
        instructions=(
            f"Tools of the Nectar role '{role.name}' on the database '{role.service.name}'. "
            "Every call is checked against the role's permissions and recorded."
        ),
        list_tools=list_tools,
        call=call,
    )
