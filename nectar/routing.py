"""Routes of the ASGI application besides Django's URLconf (imported once Django is set up)."""

from __future__ import annotations

from agents.routing import websocket_urlpatterns
from endpoints.http import PREFIX as LIVE_ENDPOINTS
from endpoints.http import live_endpoints
from mcpservers.http import application as mcp_application
from mcpservers.http import lifespan as mcp_lifespan

# (path prefix, ASGI app) pairs mounted before Django handles the rest.
HTTP_MOUNTS = [
    ("/mcp/", mcp_application),
]


def lifespan_app():
    """Start-up and shutdown of the ASGI application (servers that send lifespan events: uvicorn)."""
    return mcp_lifespan


def websocket_routes() -> list:
    """WebSocket routes: live execution events."""
    return list(websocket_urlpatterns)


def http_router(django_app):
    """Send requests under a mounted prefix to its ASGI app and everything else to Django.

    Live generated endpoints take their hot path (endpoints.http) before Django's view.
    """
    mounts = [*HTTP_MOUNTS, (LIVE_ENDPOINTS, live_endpoints(django_app))]

    async def router(scope, receive, send):
        path = scope.get("path", "")
        for prefix, app in mounts:
            if path.startswith(prefix):
                return await app(scope, receive, send)
        return await django_app(scope, receive, send)

    return router
