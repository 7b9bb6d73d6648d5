"""What every database connector provides: URL building, session setup, error classification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class ConnectorError(Exception):
    """A customer database could not be reached or refused the work; `reason` is machine-readable."""

    def __init__(self, reason: str, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    # "ok", "authentication_failed", "host_unreachable", "unknown_database", "timeout", "driver_missing", "error"
    reason: str
    detail: str
    latency_ms: float


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything a connector needs, passed in explicitly (connectors never read settings)."""

    engine: str
    host: str
    port: int | None
    database: str
    username: str
    password: str
    url: str
    options: dict
    connect_timeout: int
    statement_timeout_ms: int
    pool_size: int


def driver_message(exc: BaseException) -> str:
    """The driver's own first line of an error, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:300]


class BaseConnector:
    kind = "generic"
    sqlglot_dialect = ""
    driver = ""

    def build_url(self, cfg: ConnectionSettings) -> sa.URL:
        if cfg.url:
            return sa.make_url(cfg.url)
        return sa.URL.create(
            f"{self.kind}+{self.driver}" if self.driver else self.kind,
            username=cfg.username or None,
            password=cfg.password or None,
            host=cfg.host or None,
            port=cfg.port,
            database=cfg.database or None,
        )

    def connect_args(self, cfg: ConnectionSettings) -> dict[str, Any]:
        return {}

    def engines(self, cfg: ConnectionSettings) -> tuple[sa.Engine, sa.Engine]:
        connect_args = {**self.connect_args(cfg), **{k: v for k, v in cfg.options.items() if k != "schemas"}}
        engine = sa.create_engine(
            self.build_url(cfg),
            connect_args=connect_args,
            pool_size=cfg.pool_size,
            max_overflow=cfg.pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
            pool_timeout=cfg.connect_timeout,
        )
        return engine, engine

    def read_engine_on_loop(self, cfg: ConnectionSettings) -> AsyncEngine | None:
        """An asyncio engine for reads run on the event loop (roles.connectors.onloop); None: this driver has none."""
        return None

    def begin_read(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        return None

    def begin_write(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        return None

    def begin_read_transaction(self, conn: sa.Connection, cfg: ConnectionSettings) -> None:
        """A read-only transaction on a connection of the write pool (several statements, one snapshot)."""
        self.begin_read(conn, cfg)

    def classify(self, exc: BaseException) -> str:
        text = driver_message(exc).lower()
        if "timeout" in text or "timed out" in text:
            return "timeout"
        if "password" in text or "login failed" in text or "access denied" in text:
            return "authentication_failed"
        if "refused" in text or "unreachable" in text or "resolve" in text or "name or service" in text:
            return "host_unreachable"
        return "error"

    def default_schema(self, conn: sa.Connection, cfg: ConnectionSettings) -> str:
        return sa.inspect(conn).default_schema_name or ""

    def routines(self, conn: sa.Connection, schemas: list[str]) -> list[dict]:
        return []

    def explain_cost(self, conn: sa.Connection, sql: str, params: dict) -> float:
        return 0.0
