"""Low-level MCP Server objects for one authorised caller, shared by Streamable HTTP and stdio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp.types as types
from mcp.server.lowlevel import Server

from mcpservers.services import ToolResult, tool_call, try_sql_allowed
from mcpservers.toolgen import tools_listed
from mcpservers.workers import run_in_worker

SERVER_VERSION = "1.0"


def call_result(result: ToolResult) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.text)],
        structured_content=result.structured,
        is_error=result.is_error,
    )


async def _in_thread(function: Callable[..., Any], /, **kwargs) -> Any:
    """Run synchronous (ORM) work in the MCP worker pool (bounded threads, reused connections)."""
    return await run_in_worker(function, **kwargs)


def build_server(
    *,
    name: str,
    instructions: str,
    list_tools: Callable[[], list[dict]],
    call: Callable[..., ToolResult],
) -> Server:
    """A Server whose tools come from `list_tools()` (public definitions) and run through `call(name, arguments)`.

    `list_tools` must be cheap and must not touch the database: it runs on the event loop, at
    most once per Server (its answer also serves the SDK's Mcp-Param header checks). `call` is
    synchronous (it uses the ORM) and runs in the MCP worker pool.
    """
    listed: list[dict] | None = None

    def definitions() -> list[dict]:
        nonlocal listed
        if listed is None:
            listed = list_tools()
        return listed

    def input_schema(tool_name: str) -> dict | None:
        return next((t.get("inputSchema") for t in definitions() if t.get("name") == tool_name), None)

    async def on_list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in definitions()])

    async def on_call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        result = await _in_thread(call, name=params.name, arguments=dict(params.arguments or {}))
        return call_result(result)

    return Server(
        name,
        version=SERVER_VERSION,
        title=name,
        instructions=instructions,
        get_tool_input_schema=input_schema,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def instance_server(*, instance, api_key, agent: bool = False) -> Server:
    """The MCP server of one Role's instance, as seen through one API key.

    `agent` is for Nectar's own agents (in process): they always get try_sql, whatever the
    Role's setting for external clients.
    """
    role = instance.role
    tools = list(instance.tools or [])
    try_sql = try_sql_allowed(role=role, try_sql=agent)

    def list_tools() -> list[dict]:
        return tools_listed(tools, try_sql=try_sql)

    def call(*, name: str, arguments: dict) -> ToolResult:
        return tool_call(instance=instance, api_key=api_key, name=name, arguments=arguments, try_sql=agent)

    return build_server(
        name=f"nectar-{role.name}",
        instructions=(
            f"Tools of the Nectar role '{role.name}' on the database '{role.service.name}'. "
            "Every call is checked against the role's permissions and recorded."
        ),
        list_tools=list_tools,
        call=call,
    )
