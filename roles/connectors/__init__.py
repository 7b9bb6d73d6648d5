"""Customer database connectors: a registry of engine kinds and one pooled engine pair per Service.

Engines are cached by the Service's id and `updated_at`, so editing a Service (new password,
new host) replaces its pool on next use. Connectors receive their settings explicitly.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import importlib
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from django.conf import settings
from sqlalchemy.util import await_only

from roles.connectors.base import (
    BaseConnector,
    ConnectionSettings,
    ConnectionTestResult,
    ConnectorError,
    driver_message,
)
from roles.connectors.errors import CONNECT_TEXT, connect_error_text
from roles.connectors.onloop import on_loop, refuse_on_loop
from roles.connectors.targets import Target, TargetRefused, check_host, service_target_problem

logger = logging.getLogger(__name__)

__all__ = [
    "ConnectionSettings",
    "ConnectionTestResult",
    "ConnectorError",
    "ServiceEngines",
    "connector_for_engine",
    "connector_reads_on_loop",
    "read_connection",
    "service_engines",
    "service_engines_close_loop",
    "service_test_connection",
    "service_test_connection_unsaved",
    "write_connection",
]

_REGISTRY = {
    "postgresql": "roles.connectors.postgresql.PostgreSQLConnector",
    "mysql": "roles.connectors.mysql.MySQLConnector",
    "sqlite": "roles.connectors.sqlite.SQLiteConnector",
    "mssql": "roles.connectors.generic.MSSQLConnector",
    "oracle": "roles.connectors.generic.OracleConnector",
}

# Engines whose connector makes an asyncio read pool (read_engine_on_loop): psycopg's AsyncConnection.
_LOOP_ENGINES = frozenset({"postgresql"})

_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "sqlite": "sqlite3", "mssql": "pyodbc", "oracle": "oracledb"}


def connector_reads_on_loop(kind: str) -> bool:
    """Whether reads of this engine can run on the event loop (its connector has an asyncio driver)."""
    return kind in _LOOP_ENGINES


def connector_for_engine(kind: str) -> BaseConnector:
    path = _REGISTRY.get(kind)
    if path is None:
        raise ConnectorError("error", f"Unsupported database engine {kind!r}.")
    module_name, class_name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)()


def _settings_for(service) -> ConnectionSettings:
    return ConnectionSettings(
        engine=service.engine,
        host=service.host or "",
        port=service.port,
        database=service.database or "",
        username=service.username or "",
        password=service.password or "",
        url=service.url or "",
        options=dict(service.options or {}),
        connect_timeout=settings.CONNECTOR_CONNECT_TIMEOUT,
        statement_timeout_ms=settings.CONNECTOR_STATEMENT_TIMEOUT_MS,
        pool_size=settings.CONNECTOR_POOL_SIZE,
    )


@dataclass(frozen=True)
class ServiceEngines:
    connector: BaseConnector
    config: ConnectionSettings
    read: sa.Engine
    write: sa.Engine
    version: str
    # The read pool's asyncio twins, one per event loop (an asyncio connection belongs to one loop).
    loop_engines: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary, compare=False)

    def read_on_loop(self) -> sa.Engine | None:
        """The read engine of the running event loop's asyncio pool; None when the connector has no asyncio driver.

        Its connections are used inside roles.connectors.onloop.run_on_loop, whose greenlet
        awaits them. The pool is made on first use, with the target check of every new connection.
        """
        loop = asyncio.get_running_loop()
        with _lock:
            engine = self.loop_engines.get(loop)
            if engine is None:
                engine = self.connector.read_engine_on_loop(self.config)
                if engine is None:
                    return None
                _guard_connections(engine.sync_engine, self.config.engine)
                self.loop_engines[loop] = engine
        return engine.sync_engine

    def dispose(self) -> None:
        """Close the pools' connections (those of asyncio pools on their own loops, when these still run)."""
        self.read.dispose()
        if self.write is not self.read:
            self.write.dispose()
        with _lock:
            loop_engines = list(self.loop_engines.items())
            self.loop_engines.clear()
        for loop, engine in loop_engines:
            if not loop.is_closed() and loop.is_running():
                asyncio.run_coroutine_threadsafe(engine.dispose(), loop)


_cache: dict[str, ServiceEngines] = {}
_lock = threading.RLock()  # ServiceEngines.dispose takes it again while service_engines holds it


def service_engines(*, service) -> ServiceEngines:
    """The pooled engines of a Service, rebuilt whenever the Service was edited."""
    version = service.updated_at.isoformat() if service.updated_at else ""
    key = str(service.id)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.version == version:
            return cached
        refuse_on_loop("building a Service's pools")  # the target check resolves names: not on the event loop
        connector = connector_for_engine(service.engine)
        config = _settings_for(service)
        driver = _DRIVERS.get(service.engine)
        if driver:
            try:
                importlib.import_module(driver)
            except ImportError as exc:
                raise ConnectorError("driver_missing", f"The {driver} driver is not installed.") from exc
        refused = service_target_problem(service)
        if refused is not None:
            raise ConnectorError("target_refused", f"{refused.field}: {refused.message}")
        try:
            read, write = connector.engines(config)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as exc:
            logger.warning("invalid connection settings of service %s: %s", service.pk, driver_message(exc))
            raise ConnectorError(
                "error", "Invalid connection settings: check the engine, host, port, database and URL."
            ) from exc
        for engine in {id(read): read, id(write): write}.values():
            _guard_connections(engine, service.engine)
        entry = ServiceEngines(connector, config, read, write, version)
        _cache[key] = entry
        if cached is not None:
            cached.dispose()
        return entry


async def service_engines_close_loop() -> None:
    """Close the running event loop's asyncio read pools (at the ASGI lifespan's shutdown; tests)."""
    loop = asyncio.get_running_loop()
    with _lock:
        engines = [entry.loop_engines.pop(loop) for entry in _cache.values() if loop in entry.loop_engines]
    for engine in engines:
        await engine.dispose()


def _guard_connections(engine: sa.Engine, kind: str) -> None:
    """Check the target again each time a connection is opened, and pin it to the address checked.

    The check at save time resolved the host then; a name may resolve elsewhere now (DNS rebinding).
    SQLite files are checked by the SQLite connector itself when it opens them.
    """
    if kind == "sqlite":
        return

    @sa.event.listens_for(engine, "do_connect")
    def _check(dialect, connection_record, cargs, cparams):
        host = str(cparams.get("host") or cparams.get("unix_socket") or "")
        target = Target(
            engine=kind,
            hosts=(host,),
            port=int(cparams["port"]) if cparams.get("port") else None,
            database=str(cparams.get("dbname") or cparams.get("database") or cparams.get("db") or ""),
            username=str(cparams.get("user") or ""),
            options={},
        )
        if "," in host or "hostaddr" in cparams or "unix_socket" in cparams:
            raise ConnectorError("target_refused", "host: several hosts or a host address cannot be used here.")
        try:
            if on_loop():  # a new connection of an asyncio pool: the name is resolved off the loop
                loop = asyncio.get_running_loop()
                addresses = await_only(loop.run_in_executor(None, functools.partial(check_host, target, host)))
            else:
                addresses = check_host(target, host)
        except TargetRefused as refused:
            raise ConnectorError("target_refused", f"{refused.field}: {refused.message}") from None
        if addresses and kind == "postgresql":
            cparams["hostaddr"] = str(addresses[0])  # libpq connects there and still verifies TLS by `host`
        elif addresses and kind == "mysql" and not cparams.get("ssl"):
            cparams["host"] = str(addresses[0])


def service_engines_dispose(*, service) -> None:
    with _lock:
        cached = _cache.pop(str(service.id), None)
    if cached is not None:
        cached.dispose()


def _connect(engines: ServiceEngines, engine: sa.Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        reason = engines.connector.classify(exc)
        # The driver's text can name hosts, socket paths and users: logged, never shown.
        logger.warning("cannot connect to a customer database (%s): %s", reason, driver_message(exc))
        raise ConnectorError(
            reason, f"Cannot connect to the database: {connect_error_text(reason)}", retryable=True
        ) from exc
    except sa.exc.TimeoutError as exc:
        raise ConnectorError("timeout", "No free connection to the database in time.", retryable=True) from exc


@contextmanager
def read_connection(*, service, transaction: bool = False) -> Iterator[tuple[sa.Connection, ServiceEngines]]:
    """A read-only connection with a statement timeout; always rolled back.

    `transaction` keeps several statements in one transaction (introspection); otherwise the
    connector may serve each statement as its own read-only transaction (one round trip).
    """
    engines = service_engines(service=service)
    if on_loop():
        engine = None if transaction else engines.read_on_loop()
        if engine is None:
            refuse_on_loop("a read of this database in several statements or without an asyncio driver")
        conn = _connect(engines, engine)
        begin = engines.connector.begin_read
    elif transaction and engines.read is not engines.write:
        conn = _connect(engines, engines.write)
        begin = engines.connector.begin_read_transaction
    else:
        conn = _connect(engines, engines.read)
        begin = engines.connector.begin_read
    try:
        begin(conn, engines.config)
        yield conn, engines
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


@contextmanager
def write_connection(*, service, dry_run: bool = False) -> Iterator[tuple[sa.Connection, ServiceEngines]]:
    """A connection inside a transaction with a statement timeout; committed only if the block succeeds.

    With dry_run the transaction is always rolled back: the write runs for real (constraints,
    triggers, RETURNING) and leaves nothing behind.
    """
    refuse_on_loop("a write")
    engines = service_engines(service=service)
    conn = _connect(engines, engines.write)
    try:
        engines.connector.begin_write(conn, engines.config)
        yield conn, engines
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


_REASON_TEXT = CONNECT_TEXT


def service_test_connection_unsaved(*, service) -> ConnectionTestResult:
    """Test connection settings as typed (a Service not saved yet, or edits not saved) on a throwaway pool."""
    probe = copy.copy(service)
    probe.id, probe.updated_at = uuid.uuid4(), None
    try:
        return service_test_connection(service=probe)
    finally:
        service_engines_dispose(service=probe)


def service_test_connection(*, service) -> ConnectionTestResult:
    """Connect through the Service's pool and run a trivial query; report precisely why it failed."""
    started = time.monotonic()
    try:
        engines = service_engines(service=service)
        conn = _connect(engines, engines.write)
        try:
            conn.execute(sa.text("SELECT 1"))
        finally:
            conn.rollback()
            conn.close()
    except ConnectorError as exc:
        detail = _REASON_TEXT.get(exc.reason, exc.message)
        if exc.reason in ("error", "target_refused"):
            detail = exc.message
        return ConnectionTestResult(False, exc.reason, detail, (time.monotonic() - started) * 1000)
    except sa.exc.DBAPIError as exc:
        reason = engines.connector.classify(exc)
        logger.warning("connection test of a customer database failed (%s): %s", reason, driver_message(exc))
        return ConnectionTestResult(False, reason, connect_error_text(reason), (time.monotonic() - started) * 1000)
    return ConnectionTestResult(True, "ok", "Connected.", (time.monotonic() - started) * 1000)
