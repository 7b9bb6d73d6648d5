"""The ASGI application served by daphne: Django over HTTP, Channels over WebSocket, MCP under /mcp/."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")

from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

try:
    django_asgi_app = get_asgi_application()
except ImproperlyConfigured as exc:
    # daphne would print a traceback; a replica missing its settings says what is missing and stops.
    raise SystemExit(f"Nectar cannot start: {exc}") from None

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from nectar.routing import http_router, lifespan_app, websocket_routes

application = ProtocolTypeRouter(
    {
        "lifespan": lifespan_app(),
        "http": http_router(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_routes()))),
    }
)
