"""Live endpoints through the ASGI application: the hot path (endpoints.http) answers as Django's view does."""

from __future__ import annotations

import asyncio
import json

import pytest

from endpoints import http as hot
from mcpservers import workers
from mcpservers.audit import audit_flush
from mcpservers.models import ToolCall
from mcpservers.workers import worker_pool_close
from nectar import invalidation
from roles.connectors import service_engines_close_loop
from tests.endpoints.test_hot_path import _healthy
from tests.endpoints.test_round_trips import deploy_customers_of_region
from tests.support.clock import one_rate_window
from tests.support.platform_queries import platform_queries

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/x/acme/customers-by-region"


@pytest.fixture(autouse=True)
def _close_workers():
    yield
    worker_pool_close()  # the pool's threads keep platform connections; the test database is flushed next


@pytest.fixture(autouse=True)
def _loop():
    """One event loop for the test's calls, as a server has: its asyncio read pools persist between calls."""
    global _runner
    _runner = asyncio.Runner()
    yield
    _runner.run(service_engines_close_loop())
    _runner.close()


_runner: asyncio.Runner | None = None


@pytest.fixture
def apps():
    """(the router serving /api/v1/x/ with its hot path, Django's own ASGI app)."""
    from django.core.asgi import get_asgi_application

    from nectar.routing import http_router

    django_app = get_asgi_application()
    return http_router(django_app), django_app


def _scope(path: str, query: str = "", *, secret: str | None = None, headers: dict | None = None) -> dict:
    sent = {"host": "testserver", **(headers or {})}
    if secret:
        sent["authorization"] = f"Bearer {secret}"
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in sent.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }


def _call(app, scope: dict) -> tuple[int, dict, dict]:
    sent: list[dict] = []
    pending = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    _runner.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body)


def _warm(app, deployed, secret: str):
    endpoint = deployed()
    assert _healthy()
    status, _, body = _call(app, _scope(URL, "region=EU", secret=secret))  # fills the caches through Django
    assert status == 200, body
    return endpoint


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (URL, "region=EU"),
        (URL, "region=EU&segment=consumer&limit=2&offset=2"),  # links to the next and previous pages
        (URL + "/v1", "region=UK&page=2&limit=1"),
        (URL, "region=MARS"),  # refused by the parameter schema
        (URL, "region=EU&limit=abc"),
        (URL, "region=EU&region=UK"),
        (URL, ""),  # a required parameter is missing
    ],
)
def test_the_hot_path_answers_exactly_as_the_view(apps, deployed, api_key, path, query):
    router, django_app = apps
    _warm(router, deployed, api_key)
    scope = _scope(path, query, secret=api_key)
    answer = _call(django_app, scope)  # the view's answer (and the address cached)
    assert hot.planned(scope) is not None, "the hot path should take this request"
    assert _call(router, scope) == answer


def test_a_key_of_another_role_is_refused_alike(apps, deployed, api_key, other_role_key):
    router, django_app = apps
    _warm(router, deployed, api_key)
    scope = _scope(URL, "region=EU", secret=other_role_key)
    django_answer = _call(django_app, scope)  # caches the endpoint for the other role's key too
    assert django_answer[0] == 403
    assert hot.planned(scope) is not None
    assert _call(router, scope) == django_answer


def test_the_rate_limit_answers_alike_and_counts_both_paths(apps, deployed, api_key, settings, monkeypatch):
    router, django_app = apps
    settings.ENDPOINT_RATE_LIMIT = "3/min"
    one_rate_window(monkeypatch)
    _warm(router, deployed, api_key)  # one call
    scope = _scope(URL, "region=EU", secret=api_key)
    assert _call(router, scope)[0] == 200  # two
    assert _call(django_app, scope)[0] == 200  # three: the limit is shared
    refused = _call(router, scope)
    assert refused[0] == 429
    assert refused[2]["error"]["code"] == "throttled"
    assert "retry-after" in refused[1]
    assert _call(django_app, scope) == refused


def test_every_hot_call_is_audited_and_counted(apps, deployed, api_key):
    router, _ = apps
    endpoint = _warm(router, deployed, api_key)
    for _ in range(3):
        assert _call(router, _scope(URL, "region=EU", secret=api_key))[0] == 200
    audit_flush()
    calls = ToolCall.objects.filter(tool=endpoint.tool_name)
    assert calls.count() == 4
    assert {c.arguments.get("region") for c in calls} == {"EU"}
    endpoint.refresh_from_db()
    assert endpoint.call_count == 4


@pytest.mark.parametrize(
    "change",
    [
        {"headers": {"accept": "text/html"}},  # DRF's browsable page
        {"headers": {"accept": "application/json; indent=4"}},
        {"query": "region=EU&format=api"},
        {"headers": {"host": "evil.example"}},
        {"secret": "nk_unknown"},
        {"secret": None},
        {"path": URL + "/v9"},
        {"path": "/api/v1/x/acme/no-such-endpoint"},
        {"method": "POST"},
        {"headers": {"content-length": "2"}},
    ],
)
def test_what_the_hot_path_cannot_answer_goes_to_the_view(apps, deployed, api_key, change):
    router, _ = apps
    _warm(router, deployed, api_key)
    scope = _scope(
        change.get("path", URL),
        change.get("query", "region=EU"),
        secret=change.get("secret", api_key),
        headers=change.get("headers"),
    )
    scope["method"] = change.get("method", "GET")
    assert hot.planned(scope) is None


def test_a_revoked_key_leaves_the_hot_path_at_once(apps, deployed, api_key):
    from roles.models import RoleApiKey, hash_api_key

    router, _ = apps
    _warm(router, deployed, api_key)
    scope = _scope(URL, "region=EU", secret=api_key)
    assert hot.planned(scope) is not None
    RoleApiKey.objects.get(key_hash=hash_api_key(api_key)).revoke()
    assert hot.planned(scope) is None
    assert _call(router, scope)[0] == 401


def test_a_retired_version_is_gone_on_the_hot_path_too(apps, deployed, api_key):
    from endpoints.services import endpoint_retire

    router, _ = apps
    endpoint = _warm(router, deployed, api_key)
    scope = _scope(URL, "region=EU", secret=api_key)
    assert hot.planned(scope) is not None
    endpoint_retire(endpoint=endpoint)
    assert invalidation.healthy()
    assert hot.planned(scope) is None
    assert _call(router, scope)[0] == 410


def test_a_hot_call_is_one_customer_round_trip_and_no_platform_query(apps, proxied, org, owner, settings, monkeypatch):
    one_rate_window(monkeypatch)  # no new lease (taken in a thread) in the middle of the test
    router, _ = apps
    settings.AUDIT_SYNCHRONOUS = False  # batched off the request path, as in production
    settings.ENDPOINT_RATE_LIMIT = "100000/min"  # one lease covers the calls below
    endpoint = deploy_customers_of_region(org=org, role=proxied["role"], owner=owner)
    assert _healthy()
    scope = _scope("/api/v1/x/acme/customers-of-region", "region=EU&limit=2", secret=proxied["secret"])
    assert _call(router, scope)[0] == 200  # through Django: fills the caches
    assert hot.planned(scope) is not None
    assert _call(router, scope)[0] == 200  # the hot path's first call opens its pool's connection
    audit_flush()
    proxied["proxy"].reset()
    in_threads = []
    run_in_worker = workers.run_in_worker
    monkeypatch.setattr(workers, "run_in_worker", lambda *a, **kw: in_threads.append(a) or run_in_worker(*a, **kw))
    with platform_queries(monkeypatch) as queries:
        status, _, body = _call(router, scope)
    assert status == 200, body
    assert [row["name"] for row in body["results"]] == ["Ada", "Chloé"]
    assert body["next"] is not None  # paged in the database: the page and one row more
    assert queries == []
    assert proxied["proxy"].round_trips == 1
    # PostgreSQL reads run on the event loop; MariaDB's driver has no asyncio: the worker threads run them.
    assert len(in_threads) == (0 if proxied["engine"] == "postgresql" else 1)
    audit_flush()
    assert ToolCall.objects.filter(tool=endpoint.tool_name).count() == 3
