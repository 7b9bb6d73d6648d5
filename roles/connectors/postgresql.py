"""PostgreSQL through psycopg 3: read-only transactions, statement timeouts, functions and procedures."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from roles.connectors.base import BaseConnector, ConnectionSettings, driver_message
from roles.connectors.types import json_type_for_type_text

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

_ROUTINES_SQL = sa.text(
    """
    SELECT n.nspname AS schema, p.proname AS name, p.prokind AS kind, p.proretset AS returns_set,
           CASE WHEN p.prokind = 'p' THEN NULL ELSE pg_get_function_result(p.oid) END AS returns,
           p.proargnames AS arg_names, p.proargmodes::text[] AS arg_modes, p.pronargdefaults AS n_defaults,
           ARRAY(SELECT format_type(t.type_oid, NULL)
                 FROM unnest(COALESCE(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY AS t(type_oid, ord)
                 ORDER BY t.ord) AS arg_types
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = ANY(:schemas) AND p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    ORDER BY n.nspname, p.proname, p.oid
    """
)

_MODES = {"i": "IN", "o": "OUT", "b": "INOUT", "v": "VARIADIC", "t": "OUT"}


class PostgreSQLConnector(BaseConnector):
    kind = "postgresql"
    sqlglot_dialect = "postgres"
    driver = "psycopg"

    def connect_args(self, cfg: ConnectionSettings) -> dict[str, Any]:
        return {"connect_timeout": cfg.connect_timeout, "application_name": "nectar"}

    def engines(self, cfg: ConnectionSettings) -> tuple[sa.Engine, sa.Engine]:
        """A read pool whose sessions are read-only with a statement timeout, and the usual write pool.

        Read sessions are set up once, when they connect (libpq options: no round trip of their
        own), and run in autocommit: every read is one implicit read-only transaction, so it
        costs exactly one round trip (no BEGIN, no set_config, no ROLLBACK, no pre-ping). A
        connection the server closed meanwhile fails its next read, which the executor retries
        once on a fresh connection.
        """
        _, write = super().engines(cfg)
        return sa.create_engine(self.build_url(cfg), **self._read_engine_args(cfg)), write

    def read_engine_on_loop(self, cfg: ConnectionSettings) -> AsyncEngine:
        """The read pool's asyncio twin (psycopg's AsyncConnection): the same sessions, for reads run on the loop.

        It may hold as many connections as the read pool with its overflow, and keeps them: calls
        on the loop are not bounded by a number of threads, and an overflow connection closed
        after each read would cost a new PostgreSQL session per call under load. Connections
        are opened as calls need them, so a quiet Service holds few.
        """
        args = self._read_engine_args(cfg)
        args.update(pool_size=args["pool_size"] + args.pop("max_overflow"), max_overflow=0)
        return create_async_engine(self.build_url(cfg), **args)

    def _read_engine_args(self, cfg: ConnectionSettings) -> dict[str, Any]:
        given = {k: v for k, v in cfg.options.items() if k != "schemas"}
        session = f"-c default_transaction_read_only=on -c statement_timeout={int(cfg.statement_timeout_ms)}"
        options = f"{given.pop('options')} {session}" if given.get("options") else session
        return {
            "connect_args": {**self.connect_args(cfg), **given, "options": options},
            "isolation_level": "AUTOCOMMIT",
            # Each read is its own transaction, ended by the server: nothing to roll back on return to the pool.
            "pool_reset_on_return": None,
            "pool_size": cfg.pool_size,
            "max_overflow": cfg.pool_size,
            "pool_pre_ping": False,
            "pool_recycle": 1800,
            "pool_timeout": cfg.connect_timeout,
        }

    def _timeout(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        conn.execute(
            sa.text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(cfg.statement_timeout_ms)}
        )

    def begin_read(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        # The read pool's sessions are read-only with a statement timeout from the start (engines()).
        return None

    def begin_read_transaction(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        # On the write pool, for multi-statement reads (introspection) that need one transaction.
        # One round trip for both: switching a transaction to read-only is allowed at any point
        # (only the way back to read-write must come before the first query).
        conn.execute(
            sa.text(
                "SELECT set_config('transaction_read_only', 'on', true), set_config('statement_timeout', :ms, true)"
            ),
            {"ms": str(cfg.statement_timeout_ms)},
        )

    def begin_write(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        self._timeout(conn, cfg)

    def classify(self, exc: BaseException) -> str:
        text = driver_message(exc).lower()
        if "password authentication failed" in text or ("role" in text and "does not exist" in text):
            return "authentication_failed"
        if "no password supplied" in text or "authentication" in text:
            return "authentication_failed"
        if "database" in text and "does not exist" in text:
            return "unknown_database"
        if "timeout expired" in text or "canceling statement due to statement timeout" in text:
            return "timeout"
        if "connection refused" in text or "could not translate host" in text or "no route to host" in text:
            return "host_unreachable"
        if "is the server running" in text or "network is unreachable" in text:
            return "host_unreachable"
        return super().classify(exc)

    def default_schema(self, conn: sa.Connection, cfg: ConnectionSettings) -> str:
        return conn.execute(sa.text("SELECT current_schema()")).scalar() or "public"

    def routines(self, conn: sa.Connection, schemas: list[str]) -> list[dict]:
        out = []
        for row in conn.execute(_ROUTINES_SQL, {"schemas": schemas}).mappings():
            types = list(row["arg_types"] or [])
            names = list(row["arg_names"] or [])
            modes = [_MODES.get(m, "IN") for m in (row["arg_modes"] or ["i"] * len(types))]
            inputs = [i for i, m in enumerate(modes) if m in ("IN", "INOUT", "VARIADIC")]
            with_default = set(inputs[len(inputs) - (row["n_defaults"] or 0) :]) if row["n_defaults"] else set()
            arguments = []
            for i, type_text in enumerate(types):
                json_type, fmt = json_type_for_type_text(type_text)
                arguments.append(
                    {
                        "name": names[i] if i < len(names) and names[i] else f"arg{i + 1}",
                        "type": type_text,
                        "json_type": json_type,
                        "format": fmt,
                        "mode": modes[i],
                        "has_default": i in with_default,
                    }
                )
            is_proc = row["kind"] == "p"
            columns = []
            if not is_proc:
                for arg in arguments:
                    if arg["mode"] in ("OUT", "INOUT"):
                        columns.append(_column_from_arg(arg))
            out.append(
                {
                    "schema": row["schema"],
                    "name": row["name"],
                    "kind": "procedure" if is_proc else "function",
                    "columns": columns,
                    "primary_key": [],
                    "foreign_keys": [],
                    "indexes": [],
                    "row_count": None,
                    "arguments": arguments,
                    "returns": row["returns"],
                    "returns_set": bool(row["returns_set"]),
                }
            )
        return out

    def row_counts(self, conn: sa.Connection, schemas: list[str]) -> dict[tuple[str, str], int]:
        rows = conn.execute(
            sa.text(
                "SELECT n.nspname, c.relname, c.reltuples::bigint FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p') AND c.reltuples >= 0"
            ),
            {"schemas": schemas},
        )
        return {(s, t): int(n) for s, t, n in rows}

    def explain_cost(self, conn: sa.Connection, sql: str, params: dict) -> float:
        plan = conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}"), params).scalar()
        if isinstance(plan, str):
            plan = json.loads(plan)
        return float(plan[0]["Plan"]["Total Cost"])


def _column_from_arg(arg: dict) -> dict:
    return {
        "name": arg["name"],
        "type": arg["type"],
        "json_type": arg["json_type"],
        "format": arg["format"],
        "nullable": True,
        "default": None,
        "primary_key": False,
        "enum": None,
    }
