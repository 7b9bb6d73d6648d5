"""SQLite files: a separate read-only engine (mode=ro, query_only) for reads, a progress-handler timeout."""

from __future__ import annotations

import sqlite3
import time
from urllib.request import pathname2url

import sqlalchemy as sa

from roles.connectors.base import BaseConnector, ConnectionSettings, ConnectorError, driver_message
from roles.connectors.targets import TargetRefused, check_sqlite_path


class SQLiteConnector(BaseConnector):
    kind = "sqlite"
    sqlglot_dialect = "sqlite"
    driver = "pysqlite"

    def _path(self, cfg: ConnectionSettings) -> str:
        if cfg.url:
            return sa.make_url(cfg.url).database or ""
        return cfg.database

    def engines(self, cfg: ConnectionSettings) -> tuple[sa.Engine, sa.Engine]:
        path = self._path(cfg)
        timeout = cfg.connect_timeout

        def checked() -> str:
            # Checked on every open: the file (or a symbolic link on its way) may have changed since it was saved.
            try:
                return pathname2url(str(check_sqlite_path(path)))
            except TargetRefused as refused:
                raise ConnectorError("target_refused", f"{refused.field}: {refused.message}") from None

        def connect_rw():
            # mode=rw: never create a missing file, so a wrong path is reported, not papered over.
            return sqlite3.connect(f"file:{checked()}?mode=rw", uri=True, timeout=timeout, check_same_thread=False)

        def connect_ro():
            conn = sqlite3.connect(f"file:{checked()}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            return conn

        write = sa.create_engine("sqlite+pysqlite://", creator=connect_rw, poolclass=sa.pool.NullPool)
        read = sa.create_engine("sqlite+pysqlite://", creator=connect_ro, poolclass=sa.pool.NullPool)
        return read, write

    def _deadline(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        raw = conn.connection.dbapi_connection
        deadline = time.monotonic() + cfg.statement_timeout_ms / 1000
        raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10000)

    def begin_read(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        self._deadline(conn, cfg)

    def begin_write(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        self._deadline(conn, cfg)

    def classify(self, exc: BaseException) -> str:
        text = driver_message(exc).lower()
        if "unable to open database" in text:
            return "unknown_database"
        if "interrupted" in text:
            return "timeout"
        return super().classify(exc)

    def default_schema(self, conn: sa.Connection, cfg: ConnectionSettings) -> str:
        return "main"

    def row_counts(self, conn: sa.Connection, schemas: list[str]) -> dict[tuple[str, str], int]:
        return {}
