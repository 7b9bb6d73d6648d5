"""Low-level MCP Server objects, shared by Streamable HTTP and stdio.

A `Served` is what one authorised caller sees: a name, instructions, its tool definitions and
a synchronous `call`. Over stdio and for Nectar's own agents a Server is bound to one Served
(`build_server`). Over Streamable HTTP one Server (and one SDK session manager) serves every
request of the process: it reads the request's Served from a context variable that the HTTP
layer sets after authorising the request (`dispatching_server`).
"""

from __future__ import annotations

import contextvars
import json
import warnings
from collections.abc import Callable
from typing import Any

import mcp.types as types
from mcp import MCPDeprecationWarning
from mcp.server.lowlevel import Server

from mcpservers.fixedtools import describe_object, qualified
from mcpservers.services import ToolResult, instance_compiled, tool_call, try_sql_allowed
from mcpservers.workers import run_in_worker, run_on_loop_or_in_worker

SERVER_VERSION = "1.0"
RESOURCE_PREFIX = "nectar://objects/"
RESOURCE_TEMPLATE = RESOURCE_PREFIX + "{schema}/{name}"
MAX_COMPLETIONS = 100


def call_result(result: ToolResult) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.text)],
        structured_content=result.structured,
        is_error=result.is_error,
    )


class Served:
    """One caller's server: identity, tool definitions (built once) and the synchronous call."""

    def __init__(
        self,
        *,
        name: str,
        instructions: str,
        list_tools: Callable[[], list[dict]],
        call: Callable[..., ToolResult],
        organization_id: str | None = None,
        key_id: str | None = None,
        resources: Callable[[], list[dict]] | None = None,
        read_resource: Callable[..., str | None] | None = None,
        complete: Callable[..., list[str]] | None = None,
        reads_on_loop: Callable[[str, dict], bool] | None = None,
    ):
        self.name = name
        self.reads_on_loop = reads_on_loop or (lambda name, arguments: False)
        self.complete = complete or (lambda **kwargs: [])
        self.key_id = key_id
        self.resources = resources or (lambda: [])
        self.read_resource = read_resource or (lambda uri: None)
        self.instructions = instructions
        self._list_tools = list_tools
        self.call = call
        self.organization_id = organization_id
        self._definitions: list[dict] | None = None
        self._listed: types.ListToolsResult | None = None
        self._schemas: dict[str, dict] | None = None

    async def run_call(self, *, name: str, arguments: dict) -> ToolResult:
        """The call, on the event loop when it is a read that can run there, else in the MCP worker pool."""
        return await run_on_loop_or_in_worker(
            self.call,
            _tenant=self.organization_id,
            loop_first=self.reads_on_loop(name, arguments),
            name=name,
            arguments=arguments,
        )

    def definitions(self) -> list[dict]:
        if self._definitions is None:
            self._definitions = self._list_tools()
        return self._definitions

    def listed(self) -> types.ListToolsResult:
        if self._listed is None:
            self._listed = types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in self.definitions()])
        return self._listed

    def input_schema(self, tool_name: str) -> dict | None:
        if self._schemas is None:
            self._schemas = {t["name"]: t.get("inputSchema") for t in self.definitions()}
        return self._schemas.get(tool_name)


class _NectarServer(Server):
    """A Server whose identity and tools are those of the Served that `resolve()` returns."""

    def __init__(self, resolve: Callable[[], Served], default_name: str):
        self._resolve = resolve
        self._default_name = default_name

        async def on_list_tools(ctx, params) -> types.ListToolsResult:
            return self._resolve().listed()

        async def on_call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
            result = await self._resolve().run_call(name=params.name, arguments=dict(params.arguments or {}))
            return call_result(result)

        async def on_list_prompts(ctx, params) -> types.ListPromptsResult:
            return types.ListPromptsResult(prompts=[])

        async def on_list_resources(ctx, params) -> types.ListResourcesResult:
            served = self._resolve()
            listed = await run_in_worker(served.resources, _tenant=served.organization_id)
            return types.ListResourcesResult(resources=[types.Resource.model_validate(r) for r in listed])

        async def on_list_resource_templates(ctx, params) -> types.ListResourceTemplatesResult:
            template = types.ResourceTemplate(
                uri_template=RESOURCE_TEMPLATE,
                name="object",
                description="Schema of one table, view or routine as this role sees it (names complete)",
                mime_type="application/json",
            )
            return types.ListResourceTemplatesResult(resource_templates=[template])

        async def on_completion(ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
            values: list[str] = []
            ref = params.ref
            if isinstance(ref, types.ResourceTemplateReference) and ref.uri == RESOURCE_TEMPLATE:
                served = self._resolve()
                values = await run_in_worker(
                    served.complete,
                    argument=params.argument.name,
                    prefix=params.argument.value,
                    context=dict((params.context.arguments or {}) if params.context else {}),
                    _tenant=served.organization_id,
                )
            shown = values[:MAX_COMPLETIONS]
            return types.CompleteResult(
                completion=types.Completion(values=shown, total=len(values), has_more=len(values) > len(shown))
            )

        async def on_set_logging_level(ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
            # Accepted; Nectar sends no log notifications (calls are recorded in its own audit log instead).
            return types.EmptyResult()

        async def on_read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
            from mcp.shared.exceptions import MCPError

            served = self._resolve()
            uri = str(params.uri)
            text = await run_in_worker(served.read_resource, uri=uri, _tenant=served.organization_id)
            if text is None:
                raise MCPError(code=-32002, message=f"No such resource for this role: {uri[:200]}")
            return types.ReadResourceResult(
                contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
            )

        with warnings.catch_warnings():
            # The SDK warns that clients of protocol versions after 2026-07-28 no longer use logging;
            # older clients (and the conformance suite) still set a level.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            super().__init__(
                default_name,
                version=SERVER_VERSION,
                get_tool_input_schema=lambda name: self._resolve().input_schema(name),
                on_list_tools=on_list_tools,
                on_call_tool=on_call_tool,
                on_list_prompts=on_list_prompts,
                on_list_resources=on_list_resources,
                on_list_resource_templates=on_list_resource_templates,
                on_read_resource=on_read_resource,
                on_completion=on_completion,
                on_set_logging_level=on_set_logging_level,
            )

    # Identity follows the caller; the SDK sets these in __init__, and reads them per request.
    @property
    def name(self) -> str:
        served = self._resolve_or_none()
        return served.name if served is not None else self._default_name

    @name.setter
    def name(self, value: str) -> None:
        self._default_name = value

    @property
    def title(self) -> str | None:
        return self.name

    @title.setter
    def title(self, value) -> None:
        pass

    @property
    def instructions(self) -> str | None:
        served = self._resolve_or_none()
        return served.instructions if served is not None else None

    @instructions.setter
    def instructions(self, value) -> None:
        pass

    @property
    def _server_info_stamp_source(self) -> dict[str, Any]:
        return self.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)

    def _resolve_or_none(self) -> Served | None:
        try:
            return self._resolve()
        except LookupError:
            return None


def build_server(
    *,
    name: str,
    instructions: str,
    list_tools: Callable[[], list[dict]],
    call: Callable[..., ToolResult],
    organization_id: str | None = None,
) -> Server:
    """A Server bound to one caller (stdio, in-process clients).

    `list_tools` must not touch the database: it runs on the event loop, once per Server.
    `call` is synchronous (it uses the ORM) and runs in the MCP worker pool.
    """
    served = Served(
        name=name, instructions=instructions, list_tools=list_tools, call=call, organization_id=organization_id
    )
    return _NectarServer(lambda: served, name)


CURRENT: contextvars.ContextVar[Served] = contextvars.ContextVar("nectar_mcp_served")


def dispatching_server() -> Server:
    """The one Server of the HTTP transport: each request's Served comes from CURRENT."""
    return _NectarServer(CURRENT.get, "nectar")


def instance_served(*, instance, api_key, agent: bool = False) -> Served:
    """What one Role's instance offers through one API key.

    `agent` is for Nectar's own agents (in process): they always get try_sql, whatever the
    Role's setting for external clients.
    """
    role = instance.role
    try_sql = try_sql_allowed(role=role, try_sql=agent)
    compiled = instance_compiled(instance)

    def call(*, name: str, arguments: dict) -> ToolResult:
        return tool_call(instance=instance, api_key=api_key, name=name, arguments=arguments, try_sql=agent)

    def resources() -> list[dict]:
        return [
            {
                "uri": f"{RESOURCE_PREFIX}{grant.schema}/{grant.object_name}",
                "name": qualified(grant),
                "description": f"Schema of the {grant.kind} {qualified(grant)} as this role sees it",
                "mimeType": "application/json",
            }
            for grant in compiled.objects(role).grants
        ]

    def complete(*, argument: str, prefix: str, context: dict) -> list[str]:
        """Schema or object names of the template's arguments that start with `prefix` (case-insensitive)."""
        grants = compiled.objects(role).grants
        wanted = (prefix or "").casefold()
        if argument == "schema":
            names = {g.schema for g in grants}
        elif argument == "name":
            schema = context.get("schema")
            names = {g.object_name for g in grants if schema in (None, "", g.schema)}
        else:
            return []
        return sorted(n for n in names if n.casefold().startswith(wanted))

    def read_resource(*, uri: str) -> str | None:
        if not uri.startswith(RESOURCE_PREFIX):
            return None
        schema, _, name = uri[len(RESOURCE_PREFIX) :].partition("/")
        objects = compiled.objects(role)
        grant = objects.by_key(schema, name)
        if grant is None:
            return None
        return json.dumps(describe_object(objects, grant, read_sample=None), default=str)

    return Served(
        name=f"nectar-{role.name}",
        instructions=(
            f"Tools of the Nectar role '{role.name}' on the database '{role.service.name}'. "
            "Every call is checked against the role's permissions and recorded."
        ),
        list_tools=lambda: compiled.listed(try_sql=try_sql),
        call=call,
        organization_id=str(role.organization_id),
        key_id=str(api_key.pk) if api_key is not None else None,
        resources=resources,
        read_resource=read_resource,
        complete=complete,
        reads_on_loop=lambda name, arguments: compiled.reads_on_loop(name, role.service.engine, arguments),
    )


def instance_server(*, instance, api_key, agent: bool = False) -> Server:
    """The MCP server of one Role's instance, as seen through one API key (stdio, agents)."""
    served = instance_served(instance=instance, api_key=api_key, agent=agent)
    return _NectarServer(lambda: served, served.name)
