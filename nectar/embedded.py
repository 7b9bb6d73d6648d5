"""The embedded PostgreSQL 16 + pgvector used when DATABASE_URL is unset.

pgserver keeps one postmaster per data directory and counts the processes holding a
handle, so the web server, the worker and every manage.py command share one server; it
stops when the last of them exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

PLATFORM_DATABASE = "nectar"

_server = None


@contextmanager
def _exclusive(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def embedded_server(data_dir: Path):
    """Start (or attach to) the embedded server for this data directory."""
    global _server
    if _server is not None:
        return _server
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp, which is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    # pgserver narrates every start at INFO; servers that configure logging early (daphne) would print it.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver

    pgdata = data_dir / "pgdata"
    # Serialise start-up: pgserver's initdb/pg_ctl are not safe to race.
    with _exclusive(data_dir / "pgserver.lock"):
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        _ensure_max_connections(server)
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{PLATFORM_DATABASE}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{PLATFORM_DATABASE}";')
            logger.info("created the platform database %s in %s", PLATFORM_DATABASE, pgdata)
    _server = server
    return server


# The web server, the worker's processes and threads, MCP and channel-layer pools share one
# server; PostgreSQL's default of 100 connections is too tight for that.
MAX_CONNECTIONS = 300


def _ensure_max_connections(server) -> None:
    current = server.psql("SHOW max_connections;")
    numbers = [int(token) for token in current.split() if token.isdigit()]
    if numbers and numbers[0] >= MAX_CONNECTIONS:
        return
    server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
    # Only restart when no other process is attached; otherwise the setting applies at the next start.
    if server.global_process_id_list.get() == [os.getpid()]:
        from pgserver._commands import pg_ctl
        from pgserver.utils import PostmasterInfo

        pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=30)
        # pgserver stops "its" postmaster when the last process exits: point it at the new one.
        server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)
        logger.info("restarted the embedded PostgreSQL with max_connections = %s", MAX_CONNECTIONS)


def embedded_socket_dir(server) -> str:
    info = server.get_postmaster_info()
    return str(info.socket_dir)


def embedded_database_url(data_dir: Path, database: str = PLATFORM_DATABASE) -> str:
    server = embedded_server(data_dir)
    return f"postgresql://postgres@/{database}?host={quote(embedded_socket_dir(server), safe='/')}"
