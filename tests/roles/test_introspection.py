"""Introspection of real PostgreSQL, MariaDB and SQLite databases, and connection tests."""

from __future__ import annotations

import pytest

from roles.connectors import service_test_connection
from roles.introspection import schema_find_object, service_schema
from roles.models import Service


def test_postgresql_schema_lists_tables_views_and_routines_with_quoted_and_reserved_names(pg_service):
    schema = service_schema(service=pg_service, refresh=True)
    assert schema["engine"] == "postgresql"
    assert schema["default_schema"] == "public"
    names = {(o["schema"], o["name"], o["kind"]) for o in schema["objects"]}
    assert ("public", "customers", "table") in names
    assert ("public", "MixedCase", "table") in names
    assert ("public", "order", "table") in names
    assert ("sales", "invoices", "table") in names
    assert ("public", "eu_customers", "view") in names
    assert ("public", "add_numbers", "function") in names
    assert ("public", "bump_balance", "procedure") in names

    mixed = schema_find_object(schema, "MixedCase")
    assert [c["name"] for c in mixed["columns"]] == ["Id", "Display Name", "select"]
    assert mixed["primary_key"] == ["Id"]

    customers = schema_find_object(schema, "customers")
    cols = {c["name"]: c for c in customers["columns"]}
    assert cols["id"]["primary_key"] and cols["id"]["json_type"] == "integer" and not cols["id"]["nullable"]
    assert cols["balance"]["json_type"] == "string" and cols["balance"]["format"] == "decimal"
    assert cols["created_at"]["format"] == "date-time"
    assert cols["birthday"]["format"] == "date"
    assert cols["ref"]["format"] == "uuid"
    assert cols["avatar"]["format"] == "binary"
    assert cols["tags"]["json_type"] == "array"
    assert cols["profile"]["json_type"] == "object"
    assert cols["active"]["json_type"] == "boolean"
    assert cols["score"]["json_type"] == "number"
    assert cols["mood"]["enum"] == ["happy", "sad"]
    assert cols["region"]["default"] == "'EU'::text"
    assert customers["row_count"] == 5
    assert {"name": "customers_email_key", "columns": ["email"], "unique": True} in customers["indexes"]

    orders = schema_find_object(schema, "orders")
    assert orders["foreign_keys"] == [
        {"columns": ["customer_id"], "ref_schema": "public", "ref_table": "customers", "ref_columns": ["id"]}
    ]
    assert {"name": "orders_customer_idx", "columns": ["customer_id"], "unique": False} in orders["indexes"]
    assert schema_find_object(schema, "invoices", "sales")["columns"][0]["name"] == "id"
    assert schema_find_object(schema, "invoices", "public") is None


def test_postgresql_functions_and_procedures_carry_argument_names_types_modes_and_return_type(pg_service):
    schema = service_schema(service=pg_service)
    add = schema_find_object(schema, "add_numbers")
    assert add["returns"] == "integer" and add["returns_set"] is False
    assert [(a["name"], a["type"], a["mode"], a["has_default"], a["json_type"]) for a in add["arguments"]] == [
        ("a", "integer", "IN", False, "integer"),
        ("b", "integer", "IN", True, "integer"),
    ]
    table_fn = schema_find_object(schema, "customers_in")
    assert table_fn["returns_set"] is True
    assert table_fn["returns"] == "TABLE(id integer, name text)"
    assert [(a["name"], a["mode"]) for a in table_fn["arguments"]] == [
        ("p_region", "IN"),
        ("id", "OUT"),
        ("name", "OUT"),
    ]
    proc = schema_find_object(schema, "bump_balance")
    assert proc["kind"] == "procedure" and proc["returns"] is None
    assert [(a["name"], a["type"], a["mode"]) for a in proc["arguments"]] == [
        ("p_id", "integer", "IN"),
        ("p_amount", "numeric", "IN"),
        ("new_balance", "numeric", "INOUT"),
    ]


def test_mariadb_schema_lists_tables_views_procedures_and_functions(my_service):
    schema = service_schema(service=my_service, refresh=True)
    assert schema["engine"] == "mysql"
    assert schema["default_schema"] == my_service.database
    kinds = {o["name"]: o["kind"] for o in schema["objects"]}
    assert kinds["customers"] == "table" and kinds["eu_customers"] == "view"
    assert kinds["MixedCase"] == "table" and kinds["order"] == "table"
    assert kinds["bump_balance"] == "procedure" and kinds["add_numbers"] == "function"
    proc = schema_find_object(schema, "bump_balance")
    assert [(a["name"], a["mode"], a["json_type"]) for a in proc["arguments"]] == [
        ("p_id", "IN", "integer"),
        ("p_amount", "IN", "string"),
        ("new_balance", "OUT", "string"),
    ]
    fn = schema_find_object(schema, "add_numbers")
    assert fn["returns"] == "int(11)" and [a["name"] for a in fn["arguments"]] == ["a", "b"]
    cols = {c["name"]: c for c in schema_find_object(schema, "customers")["columns"]}
    assert cols["mood"]["enum"] == ["happy", "sad"]
    assert cols["balance"]["format"] == "decimal"
    assert cols["created_at"]["format"] == "date-time"
    mixed = schema_find_object(schema, "MixedCase")
    assert [c["name"] for c in mixed["columns"]] == ["Id", "Display Name", "select"]
    orders = schema_find_object(schema, "orders")
    assert orders["foreign_keys"][0]["ref_table"] == "customers"


def test_sqlite_schema_has_tables_and_views_and_no_routines(sqlite_service):
    schema = service_schema(service=sqlite_service, refresh=True)
    assert schema["engine"] == "sqlite" and schema["default_schema"] == "main"
    kinds = {o["name"]: o["kind"] for o in schema["objects"]}
    assert kinds == {
        "customers": "table",
        "orders": "table",
        "MixedCase": "table",
        "order": "table",
        "secrets": "table",
        "eu_customers": "view",
    }
    customers = schema_find_object(schema, "customers")
    assert customers["row_count"] == 5
    assert customers["primary_key"] == ["id"]


def test_refresh_stores_the_schema_on_the_service(sqlite_service):
    service_schema(service=sqlite_service, refresh=True)
    stored = Service.objects.get(pk=sqlite_service.pk)
    assert stored.schema_refreshed_at is not None
    assert schema_find_object(stored.schema_cache, "customers") is not None


@pytest.mark.parametrize("engine", ["postgresql", "mysql", "sqlite"])
def test_connection_test_succeeds_for_reachable_databases(engine, request):
    service = request.getfixturevalue(
        {"postgresql": "pg_service", "mysql": "my_service", "sqlite": "sqlite_service"}[engine]
    )
    result = service_test_connection(service=service)
    assert result.ok and result.reason == "ok"


def test_connection_test_reports_authentication_failed_for_a_wrong_password(org):
    service = Service.objects.create(
        organization=org,
        name="bad pw",
        engine="mysql",
        host="127.0.0.1",
        port=3306,
        username="root",
        password="definitely-wrong",
        database="mysql",
    )
    result = service_test_connection(service=service)
    assert (result.ok, result.reason) == (False, "authentication_failed")
    assert "definitely-wrong" not in result.detail


def test_connection_test_reports_authentication_failed_for_an_unknown_postgresql_user(org):
    service = Service.objects.create(
        organization=org,
        name="bad user",
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        username="no_such_user_xyz",
        password="x",
        database="postgres",
    )
    assert service_test_connection(service=service).reason == "authentication_failed"


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_connection_test_reports_host_unreachable_for_a_closed_port(org, engine):
    service = Service.objects.create(
        organization=org, name="closed", engine=engine, host="127.0.0.1", port=1, username="u", database="d"
    )
    result = service_test_connection(service=service)
    assert (result.ok, result.reason) == (False, "host_unreachable")


@pytest.mark.parametrize("engine,port,user", [("postgresql", 5432, "postgres"), ("mysql", 3306, "root")])
def test_connection_test_reports_unknown_database(org, engine, port, user):
    service = Service.objects.create(
        organization=org,
        name="nodb",
        engine=engine,
        host="127.0.0.1",
        port=port,
        username=user,
        database="no_such_db_nectar",
    )
    assert service_test_connection(service=service).reason == "unknown_database"


def test_connection_test_reports_unknown_database_for_a_missing_sqlite_file(org, tmp_path):
    service = Service.objects.create(organization=org, name="nofile", engine="sqlite", database=str(tmp_path / "no.db"))
    assert service_test_connection(service=service).reason == "unknown_database"
    assert not (tmp_path / "no.db").exists()
