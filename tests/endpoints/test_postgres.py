"""Generated endpoints on a real PostgreSQL 15 customer database: the EXPLAIN cost limit and writes."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.test import override_settings

from endpoints.services import endpoint_create_draft, endpoint_run_tests, endpoint_validate
from roles.connectors import service_engines_dispose
from roles.models import Role, Service

PG = "host=127.0.0.1 port=5432 user=postgres"
SQL = "SELECT id, region, amount FROM sales WHERE region = :region ORDER BY id"
PARAMETERS = {"type": "object", "properties": {"region": {"type": "string"}}, "required": ["region"]}


@pytest.fixture
def pg_service(org):
    name = f"test_endpoints_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"{PG} dbname={name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE sales (id serial PRIMARY KEY, region text NOT NULL, amount numeric(10,2) NOT NULL)")
        conn.execute(
            "INSERT INTO sales (region, amount) SELECT (ARRAY['EU','UK','NA'])[1 + g % 3], g % 500 "
            "FROM generate_series(1, 20000) AS g"
        )
        conn.execute("ANALYZE sales")
    service = Service.objects.create(
        organization=org,
        name="Sales PG",
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        database=name,
        username="postgres",
    )
    yield service
    service_engines_dispose(service=service)
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_endpoint(org, pg_service):
    role = Role.objects.create(
        organization=org,
        service=pg_service,
        name="Sales reader",
        permissions=[{"objectName": "sales", "schema": "public", "path": "/table/sales", "actions": ["SELECT"]}],
    )
    return endpoint_create_draft(
        organization=org,
        role=role,
        method="GET",
        slug="sales-by-region",
        description="Sales of a region",
        parameters=PARAMETERS,
        sql=SQL,
        response_schema={},
        tests=[{"name": "eu", "params": {"region": "EU"}, "expect": {"min_rows": 1000, "sample": {"region": "EU"}}}],
        docs="",
    )


def test_a_query_within_the_cost_limit_passes(pg_endpoint):
    assert endpoint_validate(endpoint=pg_endpoint) == []
    assert endpoint_run_tests(endpoint=pg_endpoint)["passed"] is True


@override_settings(SQL_COST_LIMIT=10.0)
def test_a_query_over_the_cost_limit_is_rejected(pg_endpoint):
    errors = endpoint_validate(endpoint=pg_endpoint)
    assert len(errors) == 1 and "exceeds the limit of 10" in errors[0], errors


@pytest.fixture
def writer_role(org, pg_service):
    return Role.objects.create(
        organization=org,
        service=pg_service,
        name="Sales writer",
        permissions=[
            {"objectName": "sales", "schema": "public", "path": "/table/sales", "actions": ["SELECT", "INSERT"]}
        ],
    )


INSERT_PARAMETERS = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "enum": ["EU", "UK", "NA"]},
        "amount": {"type": "number", "minimum": 0, "maximum": 10000},
    },
    "required": ["region", "amount"],
}


def _write_draft(org, role, **overrides):
    fields = {
        "organization": org,
        "role": role,
        "method": "POST",
        "slug": "record-sale",
        "description": "Record one sale",
        "parameters": INSERT_PARAMETERS,
        "write_action": {
            "action": "insert",
            "object": "sales",
            "schema": "public",
            "mapping": {"values": {"region": "region", "amount": "amount"}},
        },
        "response_schema": {},
        "tests": [],
        "docs": "",
    }
    fields.update(overrides)
    return endpoint_create_draft(**fields)


def test_a_write_the_role_is_not_granted_is_rejected(org, writer_role):
    delete = _write_draft(
        org,
        writer_role,
        method="DELETE",
        slug="forget-sale",
        parameters={"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
        write_action={"action": "delete", "object": "sales", "mapping": {"filters": {"id": "id"}}},
    )
    assert any("may not DELETE" in e for e in endpoint_validate(endpoint=delete))
    unknown = _write_draft(
        org,
        writer_role,
        write_action={"action": "insert", "object": "sales", "mapping": {"values": {"regio": "region"}}},
    )
    errors = endpoint_validate(endpoint=unknown)
    assert any("no column 'regio'" in e for e in errors) and any("amount" in e and "not used" in e for e in errors)


def test_a_deployed_insert_endpoint_writes_one_row_through_the_executor(client, org, owner, writer_role, pg_service):
    from endpoints.services import endpoint_approve, endpoint_deploy
    from roles.models import RoleApiKey
    from tests.endpoints.conftest import bearer

    endpoint = _write_draft(org, writer_role)
    assert endpoint_validate(endpoint=endpoint) == []
    endpoint_approve(endpoint=endpoint, user=owner)
    endpoint_deploy(endpoint=endpoint, user=owner)
    secret = RoleApiKey.issue(role=writer_role, name="pos")[1]
    url = "/api/v1/x/acme/record-sale"
    bad = client.post(url, {"region": "MARS", "amount": 5}, content_type="application/json", **bearer(secret))
    assert bad.status_code == 400 and bad.json()["error"]["errors"][0]["field"] == "region"
    response = client.post(url, {"region": "UK", "amount": 123.5}, content_type="application/json", **bearer(secret))
    assert response.status_code == 201, response.content
    assert response.json()["row_count"] == 1
    with psycopg.connect(f"{PG} dbname={pg_service.database}") as conn:
        rows = conn.execute("SELECT region, amount FROM sales WHERE id > 20000").fetchall()
    assert [(r, float(a)) for r, a in rows] == [("UK", 123.5)]


def test_a_write_endpoint_exports_to_code_that_compiles(org, writer_role):
    import io
    import zipfile

    from endpoints.services import endpoint_export

    archive = zipfile.ZipFile(io.BytesIO(endpoint_export(endpoint=_write_draft(org, writer_role))))
    sources = {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".py")}
    for name, text in sources.items():
        compile(text, name, "exec")
    view = sources["record-sale-v1/record_sale_v1/views.py"]
    assert "def post(self, request)" in view and "sa.insert(TABLE)" in view


def test_decimals_come_back_as_json_numbers_with_their_scale_in_the_schema(client, org, pg_endpoint, owner):
    from endpoints.numbers import public_row_schema
    from endpoints.services import endpoint_approve, endpoint_deploy
    from roles.models import RoleApiKey

    pg_endpoint.response_schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "region": {"type": "string"},
            "amount": {"type": "string", "format": "decimal"},
        },
    }
    pg_endpoint.tests = [{"name": "eu", "params": {"region": "EU"}, "expect": {"status": 200, "min_rows": 1}}]
    pg_endpoint.save()
    assert endpoint_run_tests(endpoint=pg_endpoint)["passed"] is True
    pg_endpoint.refresh_from_db()
    assert pg_endpoint.response_schema["properties"]["amount"]["x-scale"] == 2
    assert public_row_schema(pg_endpoint.response_schema)["properties"]["amount"]["type"] == "number"
    endpoint_deploy(endpoint=endpoint_approve(endpoint=pg_endpoint, user=owner), user=owner)
    secret = RoleApiKey.issue(role=pg_endpoint.role, name="numbers")[1]
    response = client.get(
        "/api/v1/x/acme/sales-by-region", {"region": "EU", "limit": 3}, HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 200
    raw = response.content.decode()
    amounts = [row["amount"] for row in response.json()["results"]]
    assert all(isinstance(a, int | float) and not isinstance(a, bool) for a in amounts)
    assert '"amount":"' not in raw.replace(" ", "")
