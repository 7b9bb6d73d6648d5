"""The ASGI application served by daphne: Django over HTTP, Channels over WebSocket, MCP under /mcp/."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from nectar.routing import http_router, lifespan_app, websocket_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "lifespan": lifespan_app(),
        "http": http_router(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_routes()))),
    }
)
