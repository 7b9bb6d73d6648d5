"""The embedded PostgreSQL 16 + pgvector used when DATABASE_URL is unset.

pgserver keeps one postmaster per data directory and counts the processes holding a
handle, so the web server, the worker and every manage.py command share one server; it
stops when the last of them exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import subprocess
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from nectar.envtools import local_secret

logger = logging.getLogger(__name__)

PLATFORM_DATABASE = "nectar"
# The platform's own login (owner of its database) and the demo Service's least-privilege login.
PLATFORM_ROLE = "nectar"
DEMO_DATABASE = "nectar_demo"
DEMO_ROLE = "nectar_demo"

# Every connection needs a password (the demo login only reaches the demo database). pgserver
# listens on its socket only (no TCP), so these lines cover every way in.
PG_HBA = f"""# Written by Nectar (nectar/embedded.py): every login needs its password.
local   {DEMO_DATABASE}   {DEMO_ROLE}   scram-sha-256
local   all   {DEMO_ROLE}   reject
local   all   all   scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128   scram-sha-256
"""

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
        converted = _secure(server, data_dir)
        _ensure_max_connections(server, data_dir)
        exists = _psql(server, data_dir, f"SELECT 1 FROM pg_database WHERE datname = '{PLATFORM_DATABASE}';")
        if "(1 row)" not in exists:
            _psql(server, data_dir, f'CREATE DATABASE "{PLATFORM_DATABASE}" OWNER "{PLATFORM_ROLE}";')
            logger.info("created the platform database %s in %s", PLATFORM_DATABASE, pgdata)
        if converted or "(1 row)" not in exists or _superuser_owns_objects(server, data_dir):
            # Also when an earlier conversion stopped half-way: it is retried until it is complete.
            _own_platform_database(server, data_dir)
    _server = server
    return server


def embedded_password(data_dir: Path, role: str) -> str:
    """The generated password of one of the embedded server's logins (kept in data_dir, owner-only)."""
    return local_secret(data_dir, f"pg_{role}_password", lambda: secrets.token_urlsafe(24))


def _psql(server, data_dir: Path, command: str, *, database: str = "postgres") -> str:
    """Run SQL as the embedded server's superuser, with its password (pgserver's own psql has none)."""
    from pgserver._commands import POSTGRES_BIN_PATH

    socket_dir = embedded_socket_dir(server)
    env = {**os.environ, "PGPASSWORD": embedded_password(data_dir, "postgres")}
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), "-h", socket_dir, "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1"],
        input=command.encode(),
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout.decode("utf-8")


def _secure(server, data_dir: Path) -> bool:
    """Give the superuser, the platform and the demo logins passwords, then require them (pg_hba.conf).

    A data directory made before this (trust for everyone) is converted on its first start: the
    passwords are set while trust still holds, then pg_hba.conf is rewritten and reloaded.
    """
    hba = Path(server.pgdata) / "pg_hba.conf"
    if hba.read_text() == PG_HBA:
        return False
    logins = {name: embedded_password(data_dir, name) for name in ("postgres", PLATFORM_ROLE, DEMO_ROLE)}
    statements = [f"ALTER ROLE postgres PASSWORD '{logins['postgres']}';"]
    for role, attributes in ((PLATFORM_ROLE, "LOGIN CREATEDB"), (DEMO_ROLE, "LOGIN")):
        statements.append(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
            f'CREATE ROLE "{role}" {attributes}; END IF; END $$;'
        )
        statements.append(f"ALTER ROLE \"{role}\" {attributes} PASSWORD '{logins[role]}';")
    # The extension needs a superuser: in template1, every database made later (tests too) has it.
    statements.append("\\c template1\nCREATE EXTENSION IF NOT EXISTS vector;")
    server.psql("\n".join(statements))  # still trust: pgserver's own psql connects
    # Keep the file's owner and mode (the server's system user reads it).
    with open(hba, "w") as handle:
        handle.write(PG_HBA)
    server.psql("SELECT pg_reload_conf();")
    logger.info("the embedded PostgreSQL now requires passwords (kept in %s)", data_dir)
    return True


def _superuser_owns_objects(server, data_dir: Path) -> bool:
    """Whether any table, view or sequence of the platform database still belongs to the superuser."""
    found = _psql(
        server,
        data_dir,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
        "AND pg_get_userbyid(c.relowner) = 'postgres' "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'));",
        database=PLATFORM_DATABASE,
    )
    numbers = [int(token) for token in found.split() if token.isdigit()]
    return bool(numbers and numbers[0] > 0)


def _own_platform_database(server, data_dir: Path) -> None:
    """The platform database and every object in it belong to the platform login, not the superuser."""
    statements = f"""
    ALTER DATABASE "{PLATFORM_DATABASE}" OWNER TO "{PLATFORM_ROLE}";
    REVOKE CONNECT ON DATABASE "{PLATFORM_DATABASE}" FROM PUBLIC;
    REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
    GRANT CONNECT ON DATABASE postgres TO "{PLATFORM_ROLE}";
    \\c {PLATFORM_DATABASE}
    CREATE EXTENSION IF NOT EXISTS vector;
    ALTER SCHEMA public OWNER TO "{PLATFORM_ROLE}";
    DO $$
    DECLARE item record;
    BEGIN
      FOR item IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND pg_get_userbyid(c.relowner) = 'postgres'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
          -- a serial or identity column's sequence follows its table's owner
          AND NOT (c.relkind = 'S' AND EXISTS (
                SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
        ORDER BY c.relkind = 'S'
      LOOP
        EXECUTE format(
          'ALTER %s public.%I OWNER TO {PLATFORM_ROLE}',
          CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                            WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
          item.relname);
      END LOOP;
    END $$;
    """
    _psql(server, data_dir, statements)


# The web server, the worker's processes and threads, MCP and channel-layer pools share one
# server; PostgreSQL's default of 100 connections is too tight for that.
MAX_CONNECTIONS = 300


def _ensure_max_connections(server, data_dir: Path) -> None:
    current = _psql(server, data_dir, "SHOW max_connections;")
    numbers = [int(token) for token in current.split() if token.isdigit()]
    if numbers and numbers[0] >= MAX_CONNECTIONS:
        return
    _psql(server, data_dir, f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
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


def embedded_database_url(data_dir: Path, database: str = PLATFORM_DATABASE, role: str = PLATFORM_ROLE) -> str:
    """A URL for a login of the embedded server (the platform's own by default), with its password."""
    server = embedded_server(data_dir)
    password = quote(embedded_password(data_dir, role), safe="")
    return f"postgresql://{role}:{password}@/{database}?host={quote(embedded_socket_dir(server), safe='/')}"
