"""MySQL and MariaDB through PyMySQL: read-only transactions, statement time limits, routines."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from roles.connectors.base import BaseConnector, ConnectionSettings, driver_message
from roles.connectors.types import json_type_for_type_text

_ROUTINES_SQL = sa.text(
    "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER FROM information_schema.ROUTINES "
    "WHERE ROUTINE_SCHEMA IN :schemas ORDER BY ROUTINE_SCHEMA, ROUTINE_NAME"
).bindparams(sa.bindparam("schemas", expanding=True))

_PARAMS_SQL = sa.text(
    "SELECT SPECIFIC_SCHEMA, SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER "
    "FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA IN :schemas "
    "ORDER BY SPECIFIC_SCHEMA, SPECIFIC_NAME, ORDINAL_POSITION"
).bindparams(sa.bindparam("schemas", expanding=True))


class MySQLConnector(BaseConnector):
    kind = "mysql"
    sqlglot_dialect = "mysql"
    driver = "pymysql"

    def connect_args(self, cfg: ConnectionSettings) -> dict[str, Any]:
        return {"connect_timeout": cfg.connect_timeout, "charset": "utf8mb4"}

    def engines(self, cfg: ConnectionSettings) -> tuple[sa.Engine, sa.Engine]:
        """A read pool whose sessions are read-only with a statement time limit, and the usual write pool.

        Read sessions are set up once, when they connect, and run in autocommit: every read is one
        implicit read-only transaction, so it costs exactly one round trip (no pre-ping, no SET, no
        START TRANSACTION, no ROLLBACK). A connection the server closed meanwhile fails its next
        read, which the executor retries once on a fresh connection.
        """
        from pymysql.constants import SERVER_STATUS

        _, write = super().engines(cfg)
        given = {k: v for k, v in cfg.options.items() if k != "schemas"}
        read = sa.create_engine(
            self.build_url(cfg),
            connect_args={**self.connect_args(cfg), **given},
            isolation_level="AUTOCOMMIT",
            pool_size=cfg.pool_size,
            max_overflow=cfg.pool_size,
            pool_pre_ping=False,
            pool_recycle=1800,
            pool_timeout=cfg.connect_timeout,
        )
        statement_timeout_ms = int(cfg.statement_timeout_ms)

        @sa.event.listens_for(read, "connect")
        def _read_only_session(dbapi_connection, _record) -> None:
            mariadb = "mariadb" in dbapi_connection.get_server_info().lower()
            limit = (
                f"max_statement_time = {statement_timeout_ms / 1000:.3f}"
                if mariadb
                else f"max_execution_time = {statement_timeout_ms}"
            )
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
                cursor.execute(f"SET SESSION {limit}")

        # In autocommit nothing is left to roll back after a read; PyMySQL would still send ROLLBACK
        # (a round trip) whenever a connection goes back to the pool. Send it only inside a transaction.
        def _rollback_in_transaction(dbapi_connection) -> None:
            if dbapi_connection.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS:
                dbapi_connection.rollback()

        read.dialect.do_rollback = _rollback_in_transaction
        return read, write

    def _timeout(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        if conn.dialect.is_mariadb:
            conn.execute(sa.text("SET SESSION max_statement_time = :s"), {"s": cfg.statement_timeout_ms / 1000})
        else:
            conn.execute(sa.text("SET SESSION max_execution_time = :ms"), {"ms": cfg.statement_timeout_ms})

    def begin_read(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        # The read pool's sessions are read-only with a statement time limit from the start (engines()).
        return None

    def begin_read_transaction(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        # On the write pool, for multi-statement reads (introspection) that need one snapshot.
        self._timeout(conn, cfg)
        conn.execute(sa.text("START TRANSACTION READ ONLY"))

    def begin_write(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        self._timeout(conn, cfg)

    def classify(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", None) or exc
        code = orig.args[0] if getattr(orig, "args", None) and isinstance(orig.args[0], int) else None
        if code in (1045, 1044, 1698):
            return "authentication_failed"
        if code == 1049:
            return "unknown_database"
        if code in (1969, 3024):
            return "timeout"
        if code in (2003, 2005, 2006, 2013):
            text = driver_message(exc).lower()
            return "timeout" if "timed out" in text else "host_unreachable"
        return super().classify(exc)

    def default_schema(self, conn: sa.Connection, cfg: ConnectionSettings) -> str:
        return conn.execute(sa.text("SELECT DATABASE()")).scalar() or ""

    def routines(self, conn: sa.Connection, schemas: list[str]) -> list[dict]:
        params: dict[tuple[str, str], list] = {}
        for row in conn.execute(_PARAMS_SQL, {"schemas": schemas}):
            params.setdefault((row[0], row[1]), []).append(row)
        out = []
        for schema, name, rtype, returns in conn.execute(_ROUTINES_SQL, {"schemas": schemas}):
            arguments = []
            for _s, _n, position, mode, pname, dtd in params.get((schema, name), []):
                if position == 0:  # a function's return value
                    continue
                json_type, fmt = json_type_for_type_text(dtd)
                arguments.append(
                    {
                        "name": pname,
                        "type": dtd,
                        "json_type": json_type,
                        "format": fmt,
                        "mode": (mode or "IN").upper(),
                        "has_default": False,
                    }
                )
            is_proc = rtype.upper() == "PROCEDURE"
            out.append(
                {
                    "schema": schema,
                    "name": name,
                    "kind": "procedure" if is_proc else "function",
                    "columns": [],
                    "primary_key": [],
                    "foreign_keys": [],
                    "indexes": [],
                    "row_count": None,
                    "arguments": arguments,
                    "returns": None if is_proc else returns,
                    "returns_set": False,
                }
            )
        return out

    def row_counts(self, conn: sa.Connection, schemas: list[str]) -> dict[tuple[str, str], int]:
        rows = conn.execute(
            sa.text(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA IN :schemas AND TABLE_TYPE = 'BASE TABLE'"
            ).bindparams(sa.bindparam("schemas", expanding=True)),
            {"schemas": schemas},
        )
        return {(s, t): int(n) for s, t, n in rows if n is not None}

    def json_columns(self, conn: sa.Connection, schemas: list[str]) -> set[tuple[str, str, str]]:
        """MariaDB's JSON is LONGTEXT with a json_valid() check; find those columns."""
        rows = conn.execute(
            sa.text(
                "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA IN :schemas"
            ).bindparams(sa.bindparam("schemas", expanding=True)),
            {"schemas": schemas},
        )
        out = set()
        for schema, table, clause in rows:
            match = re.fullmatch(r"\s*json_valid\(`((?:[^`]|``)+)`\)\s*", clause or "", re.IGNORECASE)
            if match:
                out.add((schema, table, match.group(1).replace("``", "`")))
        return out

    def explain_cost(self, conn: sa.Connection, sql: str, params: dict) -> float:
        rows = conn.execute(sa.text(f"EXPLAIN {sql}"), params).mappings().all()
        cost = 1.0
        for row in rows:
            cost *= float(row.get("rows") or 1)
        return cost
