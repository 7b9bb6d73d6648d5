"""The EXPLAIN-based cost check, on a real PostgreSQL 15 customer database."""

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
