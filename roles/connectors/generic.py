"""SQL Server and Oracle, reached through SQLAlchemy when their drivers are installed."""

from __future__ import annotations

from roles.connectors.base import BaseConnector


class MSSQLConnector(BaseConnector):
    kind = "mssql"
    sqlglot_dialect = "tsql"
    driver = "pyodbc"


class OracleConnector(BaseConnector):
    kind = "oracle"
    sqlglot_dialect = "oracle"
    driver = "oracledb"
