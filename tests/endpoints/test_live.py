"""Live generated endpoints over HTTP: the Role's keys, right rows, paging, refusals, versions, logging."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client, override_settings

from endpoints.models import EndpointStatus, GeneratedEndpoint
from endpoints.services import EndpointError, endpoint_retire, endpoint_rollback
from mcpservers.models import ToolCall
from roles.models import Role, RoleApiKey, Service
from tests.endpoints.conftest import bearer

URL = "/api/v1/x/acme/customers-by-region"
EXPECTED_SQL = (
    "SELECT customer_id, first_name, last_name, region, segment FROM customers "
    "WHERE region = ? AND segment = ? ORDER BY customer_id"
)


def test_the_live_endpoint_returns_exactly_the_rows_of_an_independent_query(client, deployed, api_key, demo_sql):
    deployed()
    expected = demo_sql(EXPECTED_SQL, ("EU", "consumer"))
    assert expected, "the demo database should have EU consumers"
    response = client.get(URL, {"region": "EU", "segment": "consumer", "limit": 1000}, **bearer(api_key))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["results"] == expected
    assert body["total"] == len(expected) and body["count"] == len(expected)
    assert body["next"] is None and body["previous"] is None
    assert body["version"] == 1


def test_an_optional_parameter_left_out_is_not_applied(client, deployed, api_key, demo_sql):
    deployed()
    expected = demo_sql("SELECT customer_id FROM customers WHERE region = 'UK' ORDER BY customer_id")
    body = client.get(URL, {"region": "UK", "limit": 1000}, **bearer(api_key)).json()
    assert [r["customer_id"] for r in body["results"]] == [r["customer_id"] for r in expected]


def test_pages_follow_next_and_previous_links(client, deployed, api_key, demo_sql):
    deployed()
    expected = [
        r["customer_id"] for r in demo_sql("SELECT customer_id FROM customers WHERE region = 'EU' ORDER BY customer_id")
    ]
    assert len(expected) > 10
    seen, url, pages = [], f"{URL}?region=EU&limit=10", 0
    while url:
        body = client.get(url, **bearer(api_key)).json()
        seen += [r["customer_id"] for r in body["results"]]
        if pages:
            assert body["previous"] is not None
        url, pages = body["next"], pages + 1
    assert seen == expected
    assert pages == -(-len(expected) // 10)
    second = client.get(URL, {"region": "EU", "limit": 10, "page": 2}, **bearer(api_key)).json()
    assert [r["customer_id"] for r in second["results"]] == expected[10:20]


@override_settings(QUERY_ROW_CAP=25)
def test_paging_reaches_every_row_beyond_the_row_cap_and_nothing_is_cut_silently(client, deployed, api_key, demo_sql):
    deployed()
    expected = [
        r["customer_id"] for r in demo_sql("SELECT customer_id FROM customers WHERE region = 'EU' ORDER BY customer_id")
    ]
    assert len(expected) > 25
    seen, url = [], f"{URL}?region=EU&limit=25"
    while url:
        body = client.get(url, **bearer(api_key)).json()
        assert body["truncated"] is False
        seen += [r["customer_id"] for r in body["results"]]
        url = body["next"]
    assert seen == expected
    far = client.get(URL, {"region": "EU", "offset": 30, "limit": 5}, **bearer(api_key)).json()
    assert [r["customer_id"] for r in far["results"]] == expected[30:35]
    too_big = client.get(URL, {"region": "EU", "limit": 26}, **bearer(api_key))
    assert too_big.status_code == 400
    assert too_big.json()["error"]["errors"][0]["field"] == "limit"


def test_a_call_without_a_key_is_unauthorized(client, deployed):
    deployed()
    response = client.get(URL, {"region": "EU"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_key_is_unauthorized(client, deployed, api_key):
    deployed()
    assert client.get(URL, {"region": "EU"}, **bearer("nk_deadbeef_wrong")).status_code == 401


def test_a_revoked_key_is_unauthorized(client, deployed, role):
    deployed()
    key, secret = RoleApiKey.issue(role=role, name="old")
    key.revoke()
    assert client.get(URL, {"region": "EU"}, **bearer(secret)).status_code == 401


def test_a_key_of_another_role_is_forbidden_and_logged_as_denied(client, deployed, other_role_key):
    endpoint = deployed()
    response = client.get(URL, {"region": "EU"}, **bearer(other_role_key))
    assert response.status_code == 403
    assert "another role" in response.json()["error"]["message"]
    call = ToolCall.objects.get(tool=endpoint.tool_name)
    assert call.outcome == "denied" and call.rows is None


def test_another_organizations_slug_is_not_found(client, deployed, api_key, other_org):
    deployed()
    assert client.get("/api/v1/x/globex/customers-by-region", {"region": "EU"}, **bearer(api_key)).status_code == 404


def test_a_key_of_another_organization_cannot_see_this_organizations_endpoint(client, deployed, other_org, demo_path):
    deployed()
    service = Service.objects.create(organization=other_org, name="Theirs", engine="sqlite", database=str(demo_path))
    role = Role.objects.create(organization=other_org, service=service, name="Theirs", permissions=[])
    secret = RoleApiKey.issue(role=role, name="theirs")[1]
    assert client.get(URL, {"region": "EU"}, **bearer(secret)).status_code == 404


def test_drafts_are_not_live(client, make_draft, api_key):
    make_draft()
    assert client.get(URL, {"region": "EU"}, **bearer(api_key)).status_code == 404
    assert client.get(f"{URL}/v1", {"region": "EU"}, **bearer(api_key)).status_code == 404


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ({"region": "MARS"}, "region", "invalid_choice"),
        ({}, "region", "required"),
        ({"region": "EU", "colour": "red"}, "colour", "unknown_parameter"),
        ({"region": "EU", "limit": "ten"}, "limit", "invalid_type"),
        ({"region": "EU", "limit": "0"}, "limit", "out_of_range"),
    ],
)
def test_bad_parameters_get_a_400_naming_the_field(client, deployed, api_key, query, field, code):
    deployed()
    response = client.get(URL, query, **bearer(api_key))
    assert response.status_code == 400
    errors = response.json()["error"]["errors"]
    assert {"field": field, "code": code} == {k: errors[0][k] for k in ("field", "code")}
    assert errors[0]["message"]


def test_numeric_parameters_are_typed_and_range_checked(client, deployed, api_key, demo_sql):
    deployed(
        slug="big-orders",
        sql="SELECT order_id, total_amount FROM orders WHERE total_amount >= :min_total ORDER BY order_id",
        parameters={
            "type": "object",
            "properties": {"min_total": {"type": "number", "minimum": 0, "maximum": 100000, "default": 500}},
        },
        response_schema={},
        tests=[{"name": "big", "params": {"min_total": 900}, "expect": {"min_rows": 1}}],
    )
    url = "/api/v1/x/acme/big-orders"
    wrong_type = client.get(url, {"min_total": "lots"}, **bearer(api_key)).json()["error"]["errors"][0]
    assert (wrong_type["field"], wrong_type["code"]) == ("min_total", "invalid_type")
    too_big = client.get(url, {"min_total": "1e9"}, **bearer(api_key)).json()["error"]["errors"][0]
    assert (too_big["field"], too_big["code"]) == ("min_total", "out_of_range")
    expected = demo_sql("SELECT order_id FROM orders WHERE total_amount >= 500 ORDER BY order_id")
    body = client.get(url, {"limit": 1000}, **bearer(api_key)).json()
    assert [r["order_id"] for r in body["results"]] == [r["order_id"] for r in expected][:1000]


def test_a_read_endpoint_refuses_other_methods(client, deployed, api_key):
    deployed()
    response = client.post(URL, {"region": "EU"}, **bearer(api_key))
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_a_new_version_keeps_the_previous_one_addressable(client, deployed, api_key):
    deployed()
    deployed(
        sql="SELECT customer_id, region FROM customers "
        "WHERE region = :region AND (:segment IS NULL OR segment = :segment)"
    )
    current = client.get(URL, {"region": "EU", "limit": 1}, **bearer(api_key)).json()
    v1 = client.get(f"{URL}/v1", {"region": "EU", "limit": 1}, **bearer(api_key)).json()
    assert current["version"] == 2 and current["columns"] == ["customer_id", "region"]
    assert v1["version"] == 1 and "first_name" in v1["columns"]


def test_a_retired_version_answers_410_gone(client, deployed, api_key):
    first = deployed()
    deployed()
    endpoint_retire(endpoint=first)
    response = client.get(f"{URL}/v1", {"region": "EU"}, **bearer(api_key))
    assert response.status_code == 410
    assert "retired" in response.json()["error"]["message"] and "v2" in response.json()["error"]["message"]
    assert client.get(URL, {"region": "EU"}, **bearer(api_key)).status_code == 200


def test_an_endpoint_whose_every_version_is_retired_is_gone(client, deployed, api_key):
    endpoint_retire(endpoint=deployed())
    assert client.get(URL, {"region": "EU"}, **bearer(api_key)).status_code == 410


def test_rollback_reactivates_the_previous_version(client, deployed, api_key, org):
    first = deployed()
    endpoint_retire(endpoint=first)
    second = deployed()
    restored = endpoint_rollback(organization=org, slug="customers-by-region")
    assert restored.pk == first.pk and restored.status == EndpointStatus.DEPLOYED
    second.refresh_from_db()
    assert second.status == EndpointStatus.RETIRED
    assert client.get(URL, {"region": "EU", "limit": 1}, **bearer(api_key)).json()["version"] == 1
    with pytest.raises(EndpointError):
        endpoint_rollback(organization=org, slug="customers-by-region")


def test_each_call_is_logged_with_redacted_arguments_and_counted(client, deployed, api_key, role):
    endpoint = deployed(
        slug="customer-by-email",
        sql="SELECT customer_id FROM customers WHERE email = :email AND (:api_token IS NULL OR :api_token <> '')",
        parameters={
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}, "api_token": {"type": "string"}},
            "required": ["email"],
        },
        tests=[],
    )
    url = "/api/v1/x/acme/customer-by-email"
    ok = client.get(url, {"email": "nobody@mail.example", "api_token": "s3cr3t"}, **bearer(api_key))
    assert ok.status_code == 200 and ok.json()["results"] == []
    bad = client.get(url, {"email": "not-an-email"}, **bearer(api_key))
    assert bad.status_code == 400
    assert bad.json()["error"]["errors"][0]["code"] == "invalid_format"
    calls = list(ToolCall.objects.filter(tool="endpoint:customer-by-email@v1").order_by("created_at", "id"))
    assert [c.outcome for c in calls] == ["ok", "error"]
    assert calls[0].arguments == {"email": "nobody@mail.example", "api_token": "[redacted]"}
    assert calls[0].instance is None and calls[0].api_key.role == role and calls[0].rows == 0
    assert "email" in calls[1].error
    endpoint.refresh_from_db()
    assert endpoint.call_count == 2 and endpoint.avg_latency_ms > 0


@override_settings(ENDPOINT_RATE_LIMIT="3/min")
def test_calls_beyond_the_keys_rate_limit_get_429(client, deployed, api_key, other_role):
    deployed()
    statuses = [client.get(URL, {"region": "EU", "limit": 1}, **bearer(api_key)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    fresh = RoleApiKey.issue(role=GeneratedEndpoint.objects.get().role, name="another key")[1]
    assert client.get(URL, {"region": "EU", "limit": 1}, **bearer(fresh)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_are_all_counted(deployed, api_key):
    endpoint = deployed()
    threads, per_thread, statuses = 6, 5, []
    lock = threading.Lock()

    def work():
        try:
            local = Client()
            for _ in range(per_thread):
                status = local.get(URL, {"region": "EU", "limit": 2}, **bearer(api_key)).status_code
                with lock:
                    statuses.append(status)
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert statuses == [200] * threads * per_thread
    endpoint.refresh_from_db()
    assert endpoint.call_count == threads * per_thread
    assert ToolCall.objects.filter(tool=endpoint.tool_name, outcome="ok").count() == threads * per_thread
