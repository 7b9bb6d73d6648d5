"""Services over customer databases: connection tests, schema introspection, the checked executor.

This module is the stable import point for other apps; the implementations live in
roles.connectors, roles.introspection, roles.permissions and roles.executor.
"""

from __future__ import annotations

from roles.connectors import (
    ConnectionTestResult,
    ConnectorError,
    service_test_connection,
    service_test_connection_unsaved,
)
from roles.executor import (
    CheckedSQL,
    ExecutorError,
    QueryResult,
    WriteResult,
    executor_call,
    executor_delete,
    executor_insert,
    executor_query,
    executor_run_sql,
    executor_update,
    sql_check,
    sql_explain_cost,
)
from roles.introspection import schema_find_object, service_refresh_schema, service_schema
from roles.permissions import Grant, permissions_validate, role_grants

__all__ = [
    "CheckedSQL",
    "ConnectionTestResult",
    "ConnectorError",
    "ExecutorError",
    "Grant",
    "QueryResult",
    "WriteResult",
    "executor_call",
    "executor_delete",
    "executor_insert",
    "executor_query",
    "executor_run_sql",
    "executor_update",
    "permissions_validate",
    "role_grants",
    "schema_find_object",
    "service_refresh_schema",
    "service_schema",
    "service_test_connection",
    "service_test_connection_unsaved",
    "sql_check",
    "sql_explain_cost",
]
