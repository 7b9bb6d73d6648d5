"""The hot path of live generated endpoints: a read by a known key, answered outside Django's request cycle.

A GET of /api/v1/x/<org>/<slug>[/v<n>] is answered here when everything it needs is already in
this process and trusted (endpoints.cache: the key and the live endpoint, kept fresh by the
invalidation listener): an allowed Host, a JSON answer asked for (no Accept, or JSON), no body,
a usable key of an active Role, a read endpoint of that Role's organization. Every check still
applies: the key's rate limit, the Role's grants and row filters (the executor), parameters,
paging and the audit record (endpoints.runtime.endpoint_call), in the MCP worker pool's threads
(mcpservers.workers), whose platform connections persist and which tenants share fairly.

Anything else (an unknown or revoked key, a first call, a retired version, a write, a browser
asking for HTML) goes to Django's view (endpoints.views.GeneratedEndpointView), which answers it
and fills the caches. Both paths give the same answer: the same body, the same headers (DRF's
Allow and Vary, Django's Content-Length and security headers, from Django's own middleware), the
same audit record; tests compare them request by request.
"""

from __future__ import annotations

import io
import logging
import re

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer

from endpoints.api import endpoint_rate_take
from endpoints.cache import api_key_peek, endpoint_peek
from endpoints.runtime import EndpointResult, endpoint_call, error_body
from endpoints.views import GeneratedEndpointView, answer_body
from mcpservers.http import host_allowed
from mcpservers.workers import run_on_loop_or_in_worker
from nectar.text import query_string_values
from roles.connectors import connector_reads_on_loop
from roles.connectors.onloop import on_loop, refuse_on_loop
from roles.models import hash_api_key

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/x/"
# The URLconf's live and live-version routes (Django's slug converter, endpoints.urls' "v<n>").
LIVE_PATH = re.compile(r"^/api/v1/x/(?P<org>[-a-zA-Z0-9_]+)/(?P<slug>[-a-zA-Z0-9_]+)(?:/v(?P<version>[0-9]{1,9}))?$")
# Accept values for which DRF's content negotiation picks the JSON renderer.
JSON_MEDIA = {"application/json", "*/*"}
_RENDERER = JSONRenderer()


def _view_headers() -> dict[str, str]:
    view = GeneratedEndpointView()
    view.setup(None)  # as as_view() does per request (HEAD answers as GET does)
    return view.default_response_headers


_VIEW_HEADERS = _view_headers()


def _no_response(request):  # the middlewares below are used only for their process_response
    return None


# In the order a response passes them on its way out (settings.MIDDLEWARE, bottom up).
_RESPONSE_MIDDLEWARE = (
    XFrameOptionsMiddleware(_no_response),
    CommonMiddleware(_no_response),
    SecurityMiddleware(_no_response),
)


def _headers(scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers") or []:
        name = name.lower()
        # A repeated header is left to Django, which joins or rejects it.
        found[name] = value if name not in found else b"\x00"
    return found


def _accepts_json(accept: bytes | None) -> bool:
    if accept is None:
        return True
    if b";" in accept:
        return False  # media type parameters ('; indent=4') change DRF's rendering: the view answers
    kinds = [part.strip().lower() for part in accept.split(b",")]
    return all(kind.decode("latin-1") in JSON_MEDIA for kind in kinds)


def planned(scope):
    """(key, endpoint) when this request can be answered here; None to let Django answer it."""
    if scope.get("method") != "GET" or settings.SECURE_SSL_REDIRECT:
        return None
    match = LIVE_PATH.match(scope.get("path", ""))
    if match is None:
        return None
    query = scope.get("query_string", b"")
    if b"format=" in query:
        return None  # DRF's renderer override
    try:
        query.decode()
    except UnicodeDecodeError:
        return None
    headers = _headers(scope)
    if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
        return None
    if (
        settings.USE_X_FORWARDED_HOST
        or not host_allowed(headers.get(b"host", b"").decode("latin-1"))
        or not _accepts_json(headers.get(b"accept"))
    ):
        return None
    parts = headers.get(b"authorization", b"").split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        key = api_key_peek(hash_api_key(parts[1].decode()))
    except UnicodeError:
        return None
    if key is None or not key.is_usable or not key.role.is_active:
        return None
    version = int(match["version"]) if match["version"] else None
    endpoint = endpoint_peek((match["org"], match["slug"], version, key.role.pk))
    if endpoint is None or endpoint.organization_id != key.role.organization_id or not endpoint.is_read_only:
        return None
    return key, endpoint


def _throttled(key) -> EndpointResult | None:
    """The 429 of the key's rate limit, as the view's throttle (ApiKeyRateThrottle) answers it."""
    allowed, retry_after = endpoint_rate_take(key)
    if allowed:
        return None
    refused = Throttled(retry_after)
    headers = {"Retry-After": f"{int(refused.wait)}"} if refused.wait else {}
    return EndpointResult(429, error_body(429, str(refused.detail), code=refused.default_code), headers=headers)


def _call(*, key, endpoint, query: bytes, spent: list) -> EndpointResult:
    """The view's work for a read: throttle, parameters from the query string, the call and its audit record.

    `spent` says that the throttle has counted this request already (a call run again in a
    thread after the event loop gave it up counts once).
    """
    if not spent:
        refused = _throttled(key)
        spent.append(True)
        if refused is not None:
            return refused
    if on_loop() and not connector_reads_on_loop(endpoint.role.service.engine):
        refuse_on_loop("a read of this database")
    values = {k: (v if len(v) > 1 else v[0]) for k, v in query_string_values(query).items()}
    return endpoint_call(endpoint=endpoint, api_key=key, values=values, from_text=True)


async def _result(*, key, endpoint, query: bytes) -> EndpointResult:
    """The call on the event loop when its read can run there (roles.connectors.onloop), else in the worker pool."""
    return await run_on_loop_or_in_worker(
        _call,
        _tenant=str(endpoint.organization_id),
        loop_first=settings.READS_ON_LOOP,
        key=key,
        endpoint=endpoint,
        query=query,
        spent=[],
    )


def _response(scope, result: EndpointResult) -> HttpResponse:
    request = ASGIRequest(scope, io.BytesIO())
    body = answer_body(result, request) if result.status != 429 else dict(result.body)
    response = HttpResponse(_RENDERER.render(body), status=result.status, content_type="application/json")
    for name, value in {**(result.headers or {}), **_VIEW_HEADERS}.items():
        response[name] = value
    for middleware in _RESPONSE_MIDDLEWARE:
        response = middleware.process_response(request, response)
    return response


async def _answer(scope, send, key, endpoint) -> None:
    try:
        result = await _result(key=key, endpoint=endpoint, query=scope.get("query_string", b""))
    except Exception:
        logger.exception("Generated endpoint %s failed", endpoint.pk)
        result = EndpointResult(500, error_body(500, "Internal error; it has been logged.", code="internal_error"))
    response = _response(scope, result)
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


def live_endpoints(django_app):
    """An ASGI app for /api/v1/x/: the hot path for what it can answer, Django for the rest."""

    async def application(scope, receive, send):
        found = planned(scope) if scope["type"] == "http" else None
        if found is None:
            return await django_app(scope, receive, send)
        return await _answer(scope, send, *found)

    return application
