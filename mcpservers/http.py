"""Streamable HTTP for MCP, mounted at /mcp/ in the ASGI application (see nectar.routing).

/mcp/<instance id>/                      one Role's generated MCP server
/mcp/platform/<org slug>/<server name>/  the platform's own servers for one organization

Each request is authorised (Origin, then the bearer RoleApiKey), then served by the SDK's
StreamableHTTPSessionManager in stateless mode with a Server built for that caller. Stateless
mode keeps no state in the process, so any number of web replicas can serve the same instance;
daphne sends no lifespan events, so the manager's task group lives for exactly one request.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import urlsplit

from django.conf import settings
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from mcpservers.platform import platform_server_for_key
from mcpservers.server import instance_server
from mcpservers.services import McpAccessError, instance_authorize
from mcpservers.workers import run_in_worker, worker_pool_close  # noqa: F401  (worker_pool_close: shutdown)

logger = logging.getLogger(__name__)

INSTANCE_PATH = re.compile(r"^/mcp/(?P<instance>[0-9a-fA-F-]{32,36})/?$")
PLATFORM_PATH = re.compile(r"^/mcp/platform/(?P<org>[a-z0-9-]{1,64})/(?P<server>[a-z-]{1,64})/?$")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(origin: str | None) -> bool:
    """Browsers send Origin; a present one must be configured or be Nectar's own (DNS-rebinding defence)."""
    if not origin:
        return True
    origin = origin.rstrip("/").lower()
    allowed = {o.rstrip("/").lower() for o in settings.MCP_ALLOWED_ORIGINS}
    return origin in allowed or origin == _origin_of(settings.PUBLIC_BASE_URL)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def bearer_secret(scope) -> str | None:
    value = _header(scope, b"authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        error = "invalid_request" if "Missing" in message else "invalid_token"
        headers.append((b"www-authenticate", f'Bearer realm="nectar", error="{error}"'.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _authorised_server(*, path: str, secret: str | None):
    """The Server for this path and key (runs in a worker thread: it reads the database)."""

    match = INSTANCE_PATH.match(path)
    if match:
        instance, key = instance_authorize(instance_id=match["instance"], secret=secret)
        return instance_server(instance=instance, api_key=key)
    match = PLATFORM_PATH.match(path)
    if match:
        return platform_server_for_key(org_slug=match["org"], server_name=match["server"], secret=secret)
    raise McpAccessError(404, "No such MCP server.")


async def serve(server, scope, receive, send) -> None:
    """Answer one HTTP request with `server` through the SDK's stateless Streamable HTTP transport."""
    manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
    async with manager.run():
        await manager.handle_request(scope, receive, send)


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "http":
        return None
    if not origin_allowed(_header(scope, b"origin")):
        return await _refuse(send, 403, "Origin not allowed for this MCP server.")
    try:
        server = await run_in_worker(_authorised_server, path=scope.get("path", ""), secret=bearer_secret(scope))
    except McpAccessError as exc:
        return await _refuse(send, exc.status, exc.message)
    return await serve(server, scope, receive, send)
