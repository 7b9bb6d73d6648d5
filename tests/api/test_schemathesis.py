"""Property-based run over the whole OpenAPI schema: no server errors, no response that breaks the schema.

Schemathesis loads /api/v1/schema/ from the Django WSGI application (with a deployed generated
endpoint, so the endpoints app's schema hook is covered too) and sends a few generated requests
per operation, authenticated with an owner's personal token and again with a member's.
"""

from __future__ import annotations

import logging

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agents.services import execution_submit
from api.models import PersonalToken
from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy
from learning.services import memory_create
from mcpservers.services import mcp_enable
from roles.models import RoleApiKey

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_app():
    """Django's WSGI app, without closing the test's database connection at the end of each request."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(params=["owner", "member"])
def caller(request):
    """The run is made with an owner's personal token and again with a member's: neither ever gets a 5xx."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def api_schema(db, org, owner, caller, role, monkeypatch, wsgi_app):
    from rest_framework.throttling import SimpleRateThrottle

    # Hundreds of requests in a few seconds: lift the throttles for this run only.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "100000/min", "anon": "100000/min"})
    mcp_enable(role=role)
    role.refresh_from_db()
    key, secret = RoleApiKey.issue(role=role, name="existing")
    execution = execution_submit(user=owner, role=role, requirement="EU customers", enqueue=False)
    memory = memory_create(organization=org, type="SUCCESS_PATTERN", content="EU customers are in the customers table.")
    endpoint = endpoint_create_draft(
        organization=org,
        role=role,
        slug="eu-customers",
        description="Customers of a region.",
        parameters={
            "type": "object",
            "properties": {"region": {"type": "string", "enum": ["EU", "UK", "NA"]}},
            "required": ["region"],
        },
        sql="SELECT customer_id, region FROM customers WHERE region = :region ORDER BY customer_id",
        response_schema={
            "type": "object",
            "properties": {"customer_id": {"type": "integer"}, "region": {"type": "string"}},
        },
        tests=[],
    )
    endpoint_approve(endpoint=endpoint, user=owner)
    endpoint_deploy(endpoint=endpoint, user=owner)
    _, token_secret = PersonalToken.issue(user=caller, name="schemathesis")
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json", wsgi_app, headers={"Authorization": f"Token {token_secret}"}
    )
    # Revoking the token would leave the rest of the run unauthenticated.
    schema = schema.exclude(path="/api/v1/auth/token/", method="DELETE")
    schema.token_secret = token_secret
    schema.role_key = secret
    schema.real_ids = {
        "services": str(role.service_id),
        "roles": str(role.pk),
        "keys": str(key.pk),
        "mcp-servers": str(role.mcp_instance.pk),
        "executions": str(execution.pk),
        "endpoints": str(endpoint.pk),
        "memories": str(memory.pk),
    }
    return schema


def with_real_ids(case, real_ids: dict) -> None:
    """Point the case at objects that exist, so detail views and actions run for real, not only 404."""
    parts = [p for p in case.operation.path.split("/") if p]
    for index, part in enumerate(parts):
        name = part.strip("{}")
        if part.startswith("{") and name in (case.path_parameters or {}):
            resource = "roles" if name == "role_pk" else parts[index - 1]
            if resource in real_ids:
                case.path_parameters[name] = real_ids[resource]


SETTINGS = settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def make_check(operation, auth: dict, real_ids: dict, ok: set):
    """A Hypothesis test of one operation; `ok` collects the operations that answered 2xx."""

    @SETTINGS
    @given(case=operation.as_strategy(), real=st.booleans())
    def check(case, real):
        if real:
            with_real_ids(case, real_ids)
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        if response.status_code < 300:
            ok.add(operation.label)

    return check


def test_the_api_answers_every_generated_request_within_its_schema(api_schema, caller, owner, caplog):
    caplog.set_level(logging.ERROR, logger="django.request")  # thousands of expected 4xx warnings
    headers = {"Authorization": f"Token {api_schema.token_secret}"}
    operations, failures, ok = 0, [], set()
    # Live endpoints first (before a generated request retires them), deletions last.
    all_operations = sorted(
        (r.ok() for r in api_schema.get_all_operations()),
        key=lambda o: (not o.path.startswith("/api/v1/x/"), o.method == "delete"),
    )
    for operation in all_operations:
        operations += 1
        # Live generated endpoints take the Role's API key, everything else the personal token.
        if operation.path.startswith("/api/v1/x/"):
            auth = {"Authorization": f"Bearer {api_schema.role_key}"}
        else:
            auth = headers

        check = make_check(operation, auth, api_schema.real_ids, ok)
        try:
            check()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # collect every operation's failures, then report them together
            failures.append(f"{operation.label}: {str(exc)[:3000]}")
    assert operations > 40
    assert not failures, "\n\n".join(failures)
    print(f"{len(ok)} of {operations} operations answered 2xx at least once:", *sorted(ok), sep="\n  ")
    # Real objects were reached, not only 404s; the generated endpoint (schema hook) answered too.
    assert len(ok) >= (20 if caller == owner else 12)  # a member is refused what only managers may do
    assert "GET /api/v1/x/acme/eu-customers" in ok
