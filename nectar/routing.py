"""Routes of the ASGI application besides Django's URLconf."""

from __future__ import annotations

from importlib import import_module

# (path prefix, "module:attribute" of an ASGI app) pairs mounted before Django handles the rest.
HTTP_MOUNTS: list[tuple[str, str]] = [
    ("/mcp/", "mcpservers.http:application"),
]


def websocket_routes() -> list:
    """WebSocket routes: live execution events."""
    from agents.routing import websocket_urlpatterns

    return list(websocket_urlpatterns)


def http_router(django_app):
    """Send requests under a mounted prefix to its ASGI app and everything else to Django."""
    mounts = []
    for prefix, target in HTTP_MOUNTS:
        module, _, attribute = target.partition(":")
        mounts.append((prefix, getattr(import_module(module), attribute)))

    async def router(scope, receive, send):
        path = scope.get("path", "")
        for prefix, app in mounts:
            if path.startswith(prefix):
                return await app(scope, receive, send)
        return await django_app(scope, receive, send)

    return router
