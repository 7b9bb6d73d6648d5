"""Streamable HTTP for MCP, mounted at /mcp/ in the ASGI application (see nectar.routing).

/mcp/<instance id>/                      one Role's generated MCP server
/mcp/platform/<org slug>/<server name>/  the platform's own servers for one organization

Each request is checked (Host against ALLOWED_HOSTS, Origin, method), authorised (the bearer
RoleApiKey: from the in-process cache keyed by the key's hash when it can be trusted, else in
a worker thread through the database), rate limited, then served by the process's single SDK
StreamableHTTPSessionManager in stateless mode, whose one Server reads the caller's tools from
a context variable. Stateless mode keeps no state in the process, so any number of web
replicas can serve the same instance.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.jsonrpc import INTERNAL_ERROR, JSONRPCError, JSONRPCResponse
from mcp_types.methods import serialize_server_result
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from mcpservers.limits import mcp_rate_check
from mcpservers.platform import platform_served_for_key
from mcpservers.server import CURRENT, call_result, dispatching_server, instance_served
from mcpservers.services import McpAccessError, cached_caller, instance_authorize_cached
from mcpservers.workers import run_in_worker, worker_pool_close  # noqa: F401  (worker_pool_close: shutdown)
from nectar.text import data_text_problem
from roles.connectors import service_engines_close_loop

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = tuple(sorted({*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS}, reverse=True))
INSTANCE_PATH = re.compile(r"^/mcp/(?P<instance>[0-9a-fA-F-]{32,36})/?$")
PLATFORM_PATH = re.compile(r"^/mcp/platform/(?P<org>[a-z0-9-]{1,64})/(?P<server>[a-z-]{1,64})/?$")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(origin: str | None, host: str | None = None) -> bool:
    """Browsers send Origin; a present one must be configured, Nectar's own, or the request's own host.

    The request's own host counts only when ALLOWED_HOSTS names it exactly (not through "*" or a
    ".domain" pattern): a page of a rebinding attacker's name is then refused by the Host check,
    and a page on another port is another origin.
    """
    if not origin:
        return True
    origin = origin.rstrip("/").lower()
    allowed = {o.rstrip("/").lower() for o in settings.MCP_ALLOWED_ORIGINS}
    if origin in allowed or origin == _origin_of(settings.PUBLIC_BASE_URL):
        return True
    if not host or urlsplit(origin).scheme not in ("http", "https") or urlsplit(origin).netloc != host.lower():
        return False
    domain, _port = split_domain_port(host.lower())
    return domain in {h.lower() for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")}


def host_allowed(host: str | None) -> bool:
    """The Host header must name one of ALLOWED_HOSTS, as Django requires of every other route."""
    return bool(host) and _host_allowed(host, tuple(settings.ALLOWED_HOSTS))


@functools.lru_cache(maxsize=512)
def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    # Clients send the same few Host headers on every call; Django's checks run once per header
    # and setting (bounded, so that made-up hosts cannot grow it).
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _header(scope, name: bytes) -> str | None:
    """The first value of a request header (a call asks for about seven: the headers are indexed once)."""
    index = scope.get("nectar.headers")
    if index is None:
        index = {}
        for key, value in scope.get("headers") or []:
            index.setdefault(key.lower(), value)
        scope["nectar.headers"] = index
    value = index.get(name)
    return value.decode("latin-1") if value is not None else None


def bearer_secret(scope) -> str | None:
    value = _header(scope, b"authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _refuse(send, status: int, message: str, *, headers: list | None = None, code: int = -32001) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}).encode()
    sent = list(headers or [])
    if status == 401:
        error = "invalid_request" if "Missing" in message else "invalid_token"
        sent.append((b"www-authenticate", f'Bearer realm="nectar", error="{error}"'.encode()))
    await _send_json(send, status, body, sent)


async def _send_json(send, status: int, body: bytes, headers: list | None = None) -> None:
    sent = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": sent})
    await send({"type": "http.response.body", "body": body})


# --- The process's one session manager ---------------------------------------------------------

_manager: dict = {"loop": None, "manager": None, "ready": None, "stop": None, "task": None}


async def _session_manager() -> StreamableHTTPSessionManager:
    """The SDK session manager of this process (of this event loop), started on first use."""
    loop = asyncio.get_running_loop()
    if _manager["loop"] is not loop:
        manager = StreamableHTTPSessionManager(app=dispatching_server(), stateless=True, json_response=True)
        ready, stop = asyncio.Event(), asyncio.Event()

        async def run() -> None:
            async with manager.run():
                ready.set()
                await stop.wait()

        _manager.update(loop=loop, manager=manager, ready=ready, stop=stop)
        _manager["task"] = loop.create_task(run(), name="nectar-mcp-session-manager")
    await _manager["ready"].wait()
    return _manager["manager"]


async def session_manager_stop() -> None:
    if _manager["loop"] is asyncio.get_running_loop() and _manager["stop"] is not None:
        _manager["stop"].set()
        await _manager["task"]
    _manager.update(loop=None, manager=None, ready=None, stop=None, task=None)


async def lifespan(scope, receive, send) -> None:
    """ASGI lifespan: start the session manager; at shutdown stop it, close this loop's customer
    read pools, flush the audit batch and release the channel layer's listener and pool on this
    loop (so that the loop can close)."""
    from channels.layers import get_channel_layer

    from mcpservers.audit import audit_shutdown

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await _session_manager()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await session_manager_stop()
            await service_engines_close_loop()
            await asyncio.get_running_loop().run_in_executor(None, audit_shutdown)
            close_loop = getattr(get_channel_layer(), "close_loop", None)
            if close_loop is not None:
                await close_loop()
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- Authorisation --------------------------------------------------------------------------------


def _served_for(caller):
    served = caller.extra.get("served")
    if served is None:
        served = caller.extra["served"] = instance_served(instance=caller.instance, api_key=caller.key)
    return served


def _authorised(*, path: str, secret: str | None):
    """The Served for this path and key (runs in a worker thread: it may read the database)."""
    match = INSTANCE_PATH.match(path)
    if match:
        return _served_for(instance_authorize_cached(instance_id=match["instance"], secret=secret))
    match = PLATFORM_PATH.match(path)
    if match:
        return platform_served_for_key(org_slug=match["org"], server_name=match["server"], secret=secret)
    raise McpAccessError(404, "No such MCP server.")


def _served_from_cache(path: str, secret: str | None):
    match = INSTANCE_PATH.match(path)
    if match is None:
        return None
    caller = cached_caller(instance_id=match["instance"], secret=secret)
    return _served_for(caller) if caller is not None else None


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] != "http":
        return None
    host = _header(scope, b"host")
    if not host_allowed(host):
        return await _refuse(send, 400, "Invalid Host header.", code=-32600)
    if not origin_allowed(_header(scope, b"origin"), host):
        return await _refuse(send, 403, "Origin not allowed for this MCP server.")
    if scope.get("method") != "POST":
        # Stateless: no session to resume or delete, and no idle server-sent event stream to hold open.
        return await _refuse(
            send, 405, "This MCP endpoint answers POST only.", headers=[(b"allow", b"POST")], code=-32600
        )
    version = _header(scope, b"mcp-protocol-version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        return await _refuse(
            send,
            400,
            f"Unsupported MCP-Protocol-Version {version[:40]!r}; this server supports {', '.join(SUPPORTED_VERSIONS)}.",
            code=-32600,
        )
    path, secret = scope.get("path", ""), bearer_secret(scope)
    try:
        served = _served_from_cache(path, secret)
        if served is None:
            served = await run_in_worker(_authorised, path=path, secret=secret)
        await mcp_rate_check(served)
    except McpAccessError as exc:
        return await _refuse(send, exc.status, exc.message, headers=exc.headers)
    body = await _request_body(receive)
    if body is None:
        return None  # the client went away
    if _SURROGATE_ESCAPE.search(body) and await _answered_bad_text_call(served, body, send):
        return None
    call = _plain_tools_call(scope, body)
    if call is not None:
        return await _answer_tools_call(served, call, send)
    manager = await _session_manager()
    token = CURRENT.set(served)
    try:
        await manager.handle_request(scope, _replayed(body, receive), send)
    finally:
        CURRENT.reset(token)


# --- A plain tool call, answered without the SDK's per-request session -------------------------

JSON_ACCEPTED = {"application/json", "application/*", "*/*"}


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: the SDK's parser refuses them too


# json.loads(body, parse_constant=...) would build a decoder (and its scanner) per call: one is kept.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _plain_tools_call(scope, body: bytes) -> tuple | None:
    """(id, tool name, arguments, protocol version) of a lone `tools/call` of a pre-2026 protocol version,
    which the SDK would answer with one JSON response and nothing else; None for anything else.

    Such a call is what MCP clients send most, and the SDK would build a transport, memory streams
    and a task group for it. Everything else (initialize, lists, batches, notifications, the
    2026-07-28 protocol, calls with `_meta` or malformed ones) goes to the SDK.
    """
    version = _header(scope, b"mcp-protocol-version")
    if version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    if (_header(scope, b"content-type") or "").split(";")[0].strip() != "application/json":
        return None
    accepted = {kind.split(";")[0].strip().lower() for kind in (_header(scope, b"accept") or "").split(",")}
    if not accepted & JSON_ACCEPTED:
        return None
    try:
        message = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except ValueError:  # UnicodeDecodeError is one
        return None
    if not isinstance(message, dict) or message.keys() != {"jsonrpc", "id", "method", "params"}:
        return None
    request_id, params = message["id"], message["params"]
    if message["jsonrpc"] != "2.0" or message["method"] != "tools/call":
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    if not isinstance(params, dict) or "name" not in params or not params.keys() <= {"name", "arguments"}:
        return None
    name, arguments = params["name"], params.get("arguments")
    arguments = {} if arguments is None else arguments
    if not isinstance(name, str) or not isinstance(arguments, dict):
        return None
    return request_id, name, arguments, version


async def _answer_tools_call(served, call: tuple, send) -> None:
    """The tool's result as the SDK words it: the same result model, sieved for the protocol version."""
    request_id, name, arguments, version = call
    try:
        result = await served.run_call(name=name, arguments=arguments)
        body = _result_body(request_id, result, version)
        if body is None:
            dumped = call_result(result).model_dump(by_alias=True, mode="json", exclude_none=True)
            answer = JSONRPCResponse(
                jsonrpc="2.0", id=request_id, result=serialize_server_result("tools/call", version, dumped)
            )
            body = answer.model_dump_json(by_alias=True, exclude_unset=True).encode()
    except Exception:
        logger.exception("MCP tool call %s failed", name[:100])
        error = {"code": INTERNAL_ERROR, "message": "Internal error; it has been logged."}
        answer = JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
        body = answer.model_dump_json(by_alias=True, exclude_unset=True).encode()
    await _send_json(send, 200, body)


_RESULT_FIELDS: dict[str, frozenset] = {}


def _result_fields(version: str) -> frozenset:
    """The fields of a tool call's result that the SDK keeps for this protocol version (its sieve, asked once)."""
    fields = _RESULT_FIELDS.get(version)
    if fields is None:
        probe = {"content": [{"type": "text", "text": "{}"}], "structuredContent": {}, "isError": False}
        fields = _RESULT_FIELDS[version] = frozenset(serialize_server_result("tools/call", version, probe))
    return fields


def _result_body(request_id, result, version: str) -> bytes | None:
    """The JSON-RPC answer of a text result, written without building the SDK's models; None: let them write it.

    What the SDK would send (the same fields for the version, structuredContent only where the
    version has it): a text content whose JSON, when the result has a structured form, is that
    form itself, so it is written once for both.
    """
    if result.structured is not None and not result.text_is_structured:
        return None
    fields = _result_fields(version)
    parts = ['{"jsonrpc":"2.0","id":', json.dumps(request_id), ',"result":{"content":[{"type":"text","text":']
    parts += [json.dumps(result.text, ensure_ascii=False), "}]"]
    if result.structured is not None and "structuredContent" in fields:
        parts += [',"structuredContent":', result.text]
    if "isError" in fields:
        parts += [',"isError":', "true" if result.is_error else "false"]
    parts.append("}}")
    try:
        return "".join(parts).encode()
    except UnicodeEncodeError:
        return None  # text that is not valid Unicode: the SDK's models say how it is sent


# --- Text that JSON can carry but Unicode cannot ------------------------------------------------

# A JSON escape of a UTF-16 surrogate; paired ones (emoji) are fine, a lone one is not valid Unicode.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


async def _request_body(receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replayed(body: bytes, receive):
    """An ASGI receive that hands the body already read to the SDK, then whatever follows."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        return pending.pop() if pending else await receive()

    return replay


async def _answered_bad_text_call(served, body: bytes, send) -> bool:
    """A tools/call whose arguments hold a lone surrogate: answered as the tool's own error, and audited.

    The SDK refuses such JSON as a parse error before any tool sees it, which would leave the call
    out of the audit log. The call goes to the tool instead, which refuses the argument by name.
    """
    try:
        message = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("method") != "tools/call" or "id" not in message:
        return False
    params = message.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return False
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, dict) or data_text_problem(params) is None:
        return False
    if data_text_problem(params["name"]) is not None:
        return False  # no tool has such a name: the SDK's parse error says enough
    result = await run_in_worker(served.call, name=params["name"], arguments=arguments, _tenant=served.organization_id)
    answer = {
        "jsonrpc": "2.0",
        "id": message["id"],
        "result": call_result(result).model_dump(by_alias=True, mode="json", exclude_none=True),
    }
    await _send_json(send, 200, json.dumps(answer).encode())
    return True
