"""Validation of Role permissions against the introspected schema, and the grants they produce."""

from __future__ import annotations

from roles.permissions import permissions_validate, role_grants
from tests.roles.conftest import table_perm


def _messages(service, permissions):
    return [
        (e["index"], e["field"], e["message"]) for e in permissions_validate(service=service, permissions=permissions)
    ]


def test_valid_permissions_in_the_specs_form_have_no_errors(pg_service):
    permissions = [
        table_perm("customers", columns={"allow": ["id", "name"]}, rowFilter={"region": "EU"}),
        table_perm("eu_customers", ["SELECT"], kind="view"),
        table_perm("invoices", ["SELECT"], schema="sales"),
        table_perm("bump_balance", ["EXECUTE"], kind="proc"),
        table_perm("add_numbers", ["EXECUTE"], kind="proc"),
    ]
    assert permissions_validate(service=pg_service, permissions=permissions) == []


def test_each_mistake_gets_a_precise_error(pg_service):
    errors = _messages(
        pg_service,
        [
            table_perm("nope"),
            table_perm("eu_customers", ["SELECT", "INSERT"], kind="view"),
            table_perm("customers", ["SELECT"], kind="view"),
            table_perm("orders", ["SELECT"], columns={"allow": ["id", "ghost"]}),
            table_perm("orders", ["SELECT"], schema="public", rowFilter={"ghost": 1}),
            {"objectName": "orders", "path": "/tbl/orders", "actions": ["SELECT"]},
            table_perm("add_numbers", ["SELECT"], kind="proc"),
            "customers",
        ],
    )
    fields = [(i, f) for i, f, _ in errors]
    assert (0, "objectName") in fields
    assert (1, "actions") in fields
    assert (2, "path") in fields
    assert (3, "columns.allow") in fields
    assert (4, "rowFilter.ghost") in fields
    assert (5, "path") in fields
    assert (6, "actions") in fields
    assert (7, None) in fields
    assert any("ghost" in m for _, _, m in errors)


def test_duplicate_grants_of_one_object_are_reported(sqlite_service):
    errors = _messages(sqlite_service, [table_perm("customers", ["SELECT"]), table_perm("customers", ["INSERT"])])
    assert errors and errors[0][0] == 1


def test_role_grants_resolve_columns_and_skip_invalid_entries(pg_service, make_role):
    role = make_role(
        pg_service,
        [
            table_perm("customers", ["SELECT"], columns={"deny": ["secret"]}, rowFilter={"region": "EU"}),
            table_perm("ghost"),
        ],
    )
    grants = role_grants(role=role)
    assert len(grants) == 1
    grant = grants[0]
    assert (grant.schema, grant.object_name, grant.kind) == ("public", "customers", "table")
    assert grant.actions == frozenset({"SELECT"})
    assert "secret" not in grant.allowed_columns and "name" in grant.allowed_columns
    assert grant.row_filter == {"region": "EU"}
    assert grant.object["name"] == "customers"
