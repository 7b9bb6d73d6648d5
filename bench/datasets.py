"""Public sample databases (Sakila, Northwind) in PostgreSQL, SQLite and MariaDB, for the accuracy benchmark.

Run: python -m bench.datasets [sakila|northwind ...] [--engine postgresql|sqlite|mysql ...] [--shift weeks|years|none]

PostgreSQL gets each dataset from its own SQL files in ../shared/datasets (psql, one transaction),
exactly as the datasets README shows. SQLite and MariaDB get a copy made through SQLAlchemy: the
tables are reflected from PostgreSQL and created on the target with portable types (enums and
domains become their base types, arrays comma-separated text, CHAR padding trimmed, tsvector
text, time zones UTC), with their primary keys, foreign keys, unique constraints and plain
indexes, then the rows are copied. Views are transpiled with sqlglot and kept only when they
return exactly what they return on PostgreSQL; the others are listed as skipped.

Dates. Relative windows ("last 90 days", "this year") mean nothing on data from 2005 or 1997, so
every date and timestamp column of every table is moved by the same amount, chosen from the
newest date in the data and today's date:
  weeks  (default) a whole number of weeks, so weekdays are kept: the newest date lands in the
         last seven days;
  years  a whole number of years, so calendar dates are kept (29 February becomes 28 February
         where the target year has none): the newest date lands in the last year;
  none   the original dates.
The shift is applied once, in PostgreSQL, before the copies are made, so it is identical on every
engine; `DatasetCopy.shift_text` says which one was used.

Re-runs are fast: each copy carries a marker (PostgreSQL and MariaDB: the database comment;
SQLite: a JSON file beside the database) with the checksum of the source files, the loader
version, the shift and the table subset. An unchanged copy is reused; anything else is rebuilt.
Names: the bench uses stable names (bench_sakila, bench_northwind); tests pass a unique name and
drop it afterwards (`dataset_drop`).

Connections: BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
and BENCH_MYSQL_URL (default mysql+pymysql://root@127.0.0.1:3306/) name the servers and an
administrative user able to create databases.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_types
from sqlalchemy.dialects import postgresql as pg_types
from sqlalchemy.dialects import sqlite as sqlite_types
from sqlalchemy.engine import URL, make_url

from bench.compare import normalise

LOADER_VERSION = 2


def _datasets_dir() -> Path:
    """BENCH_DATASETS_DIR, else the nearest shared/datasets beside the checkout or one of its parents."""
    if os.environ.get("BENCH_DATASETS_DIR"):
        return Path(os.environ["BENCH_DATASETS_DIR"])
    checkout = Path(__file__).resolve().parents[1]
    for parent in checkout.parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    return checkout.parent / "shared" / "datasets"


DATASETS_DIR = _datasets_dir()
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL") or "mysql+pymysql://root@127.0.0.1:3306/"
ENGINES = ("postgresql", "sqlite", "mysql")
SHIFTS = ("weeks", "years", "none")
BATCH = 2000
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[str, ...]  # relative to DATASETS_DIR, loaded in this order

    def paths(self) -> list[Path]:
        return [DATASETS_DIR / f for f in self.files]

    def checksum(self) -> str:
        digest = hashlib.sha256()
        for path in self.paths():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


DATASETS = {
    "sakila": Dataset(
        "sakila", ("sakila/postgres-sakila-schema.sql", "sakila/postgres-sakila-insert-data-using-copy.sql")
    ),
    "northwind": Dataset("northwind", ("northwind/northwind.sql",)),
}


class DatasetError(Exception):
    """A dataset that could not be loaded or copied; the message says which step and why."""


@dataclass(frozen=True)
class DateShift:
    """How far every date and timestamp was moved: `days` exactly (a whole number of weeks) or `years`.

    Mode "seeded" describes data generated around its own anchor day (the demo database): `days`
    is how far that anchor is from `newest_original`, the anchor its requirements were written on.
    """

    mode: str
    days: int = 0
    years: int = 0
    newest_original: str = ""  # ISO date of the newest date in the source data

    @property
    def newest_shifted(self) -> str:
        if not self.newest_original:
            return ""
        return shift_value(date.fromisoformat(self.newest_original), self).isoformat()

    @property
    def text(self) -> str:
        if self.mode == "seeded":
            anchor = self.newest_shifted
            return f"dates as seeded, anchored on {anchor} ({self.days:+d} days from {self.newest_original})"
        if self.mode == "none" or (not self.days and not self.years):
            return f"dates unchanged (newest {self.newest_original or 'unknown'})"
        if self.mode == "years":
            amount = f"{self.years} years (calendar dates kept)"
        else:
            amount = f"{self.days} days ({self.days // 7} weeks, weekdays kept)"
        return f"dates moved forward by {amount}: newest {self.newest_original} is now {self.newest_shifted}"

    def as_dict(self) -> dict:
        return {"mode": self.mode, "days": self.days, "years": self.years, "newest_original": self.newest_original}


def date_shift_for(*, mode: str, newest: date, today: date | None = None) -> DateShift:
    """The shift that brings `newest` as close to `today` as the mode allows, never past it."""
    if mode not in SHIFTS:
        raise DatasetError(f"shift must be one of {', '.join(SHIFTS)}, not {mode!r}")
    today = today or datetime.now(UTC).date()
    if mode == "none" or newest >= today:
        return DateShift(mode, newest_original=newest.isoformat())
    if mode == "weeks":
        return DateShift("weeks", days=(today - newest).days // 7 * 7, newest_original=newest.isoformat())
    years = today.year - newest.year - (1 if (newest.month, newest.day) > (today.month, today.day) else 0)
    return DateShift("years", years=years, newest_original=newest.isoformat())


def shift_value(value: Any, shift: DateShift) -> Any:
    """A date or datetime moved by the shift (Python side; PostgreSQL does the same with intervals)."""
    if shift.days:
        return value + timedelta(days=shift.days)
    if shift.years:
        try:
            return value.replace(year=value.year + shift.years)
        except ValueError:  # 29 February in a year without one
            return value.replace(year=value.year + shift.years, day=28)
    return value


@dataclass(frozen=True)
class DatasetCopy:
    """One loaded copy of a dataset on one engine, and how to reach it."""

    dataset: str
    engine: str  # postgresql | sqlite | mysql
    database: str  # database name, or the SQLite file's path
    host: str = ""
    port: int | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    shift: DateShift = field(default_factory=lambda: DateShift("none"))
    tables: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # "view actor_info: ..." for what did not translate
    reused: bool = False

    @property
    def url(self) -> str:
        """A SQLAlchemy URL (holds the password, if any: never print it)."""
        if self.engine == "sqlite":
            return f"sqlite:///{self.database}"
        driver = "postgresql+psycopg" if self.engine == "postgresql" else "mysql+pymysql"
        url = URL.create(
            driver,
            username=self.username or None,
            password=self.password or None,
            host=self.host or None,
            port=self.port,
            database=self.database,
        )
        return url.render_as_string(hide_password=False)

    @property
    def display(self) -> str:
        where = self.database if self.engine == "sqlite" else f"{self.database} on {self.host}:{self.port}"
        return f"{self.dataset} ({self.engine}: {where})"

    @property
    def shift_text(self) -> str:
        return self.shift.text

    def service_fields(self) -> dict:
        """The connection fields of a Nectar Service for this copy."""
        engine = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}[self.engine]
        if self.engine == "sqlite":
            return {"engine": engine, "database": self.database}
        return {
            "engine": engine,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.username,
            "password": self.password,
        }


# --- progress ----------------------------------------------------------------------------------


class _Progress:
    """A rich progress bar when asked for one, else nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        if self._progress is None:
            return lambda advance: None
        task_id = self._progress.add_task(description, total=total)
        return lambda advance: self._progress.advance(task_id, advance)

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text)


# --- PostgreSQL: the source ----------------------------------------------------------------------


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _database_url(server_url: str, database: str) -> URL:
    return make_url(server_url).set(database=database)


def _check_name(database: str) -> None:
    if not _NAME.match(database):
        raise DatasetError(
            f"database name {database!r}: use lowercase letters, digits and underscores, starting with a letter"
        )


def _pg_marker(admin: sa.Engine, database: str) -> dict | None:
    with admin.connect() as conn:
        row = conn.execute(
            sa.text("SELECT shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = :name"),
            {"name": database},
        ).first()
    if row is None:
        return None
    try:
        return json.loads(row[0] or "")
    except ValueError:
        return {}


def _pg_drop(admin: sa.Engine, database: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def _psql_uri(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _date_columns(conn: sa.Connection) -> list[tuple[str, str]]:
    """(table, column) of every date or timestamp column of the public tables (not views)."""
    rows = conn.execute(
        sa.text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
            "AND c.data_type IN ('date', 'timestamp without time zone', 'timestamp with time zone') "
            "ORDER BY c.table_name, c.ordinal_position"
        )
    )
    return [(r[0], r[1]) for r in rows]


def _pg_newest_date(conn: sa.Connection, columns: list[tuple[str, str]]) -> date | None:
    newest = None
    for table, column in columns:
        value = conn.execute(sa.text(f'SELECT max("{column}") FROM "{table}"')).scalar()
        if value is None:
            continue
        value = value.date() if isinstance(value, datetime) else value
        newest = value if newest is None or value > newest else newest
    return newest


def _pg_apply_shift(conn: sa.Connection, columns: list[tuple[str, str]], shift: DateShift) -> None:
    if not shift.days and not shift.years:
        return
    interval = f"{shift.days} days" if shift.days else f"{shift.years} years"
    by_table: dict[str, list[str]] = {}
    for table, column in columns:
        by_table.setdefault(table, []).append(column)
    # Triggers (last_update = now(), full-text refresh) must not rewrite the rows being moved.
    conn.execute(sa.text("SET session_replication_role = replica"))
    for table, cols in by_table.items():
        assignments = ", ".join(f'"{c}" = "{c}" + interval \'{interval}\'' for c in cols)
        conn.execute(sa.text(f'UPDATE ONLY "{table}" SET {assignments}'))
    conn.execute(sa.text("SET session_replication_role = DEFAULT"))


def load_postgres(
    *,
    dataset: str,
    database: str | None = None,
    shift: str = "weeks",
    server_url: str = POSTGRES_URL,
    progress: bool = True,
    today: date | None = None,
) -> DatasetCopy:
    """Load a dataset from its SQL files into PostgreSQL (or reuse an unchanged copy); dates shifted."""
    spec = DATASETS.get(dataset)
    if spec is None:
        raise DatasetError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    database = database or f"bench_{dataset}"
    _check_name(database)
    if shift not in SHIFTS:
        raise DatasetError(f"shift must be one of {', '.join(SHIFTS)}, not {shift!r}")
    checksum = f"{spec.checksum()}-v{LOADER_VERSION}"
    admin = _admin_engine(server_url)
    url = _database_url(server_url, database)
    try:
        marker = _pg_marker(admin, database)
        if marker and marker.get("checksum") == checksum and marker.get("shift", {}).get("mode") == shift:
            wanted = date_shift_for(
                mode=shift, newest=date.fromisoformat(marker["shift"]["newest_original"]), today=today
            )
            if wanted.as_dict() == marker["shift"]:
                return _pg_copy(spec.name, url, DateShift(**marker["shift"]), reused=True)
        with _Progress(progress) as bar:
            step = bar.task(f"{dataset}: PostgreSQL from SQL files", len(spec.files) + 2)
            _pg_drop(admin, database)
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
            command = ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", _psql_uri(url)]
            for path in spec.paths():
                command += ["-f", str(path)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                _pg_drop(admin, database)
                raise DatasetError(f"psql could not load {dataset}: {done.stderr.strip()[-800:]}")
            step(len(spec.files) + 1)
            source = sa.create_engine(url, poolclass=sa.NullPool)
            try:
                with source.begin() as conn:
                    columns = _date_columns(conn)
                    newest = _pg_newest_date(conn, columns)
                    moved = date_shift_for(mode=shift, newest=newest, today=today) if newest else DateShift("none")
                    _pg_apply_shift(conn, columns, moved)
                    conn.execute(sa.text("ANALYZE"))
            finally:
                source.dispose()
            with admin.connect() as conn:
                text = json.dumps({"checksum": checksum, "shift": moved.as_dict()})
                conn.execute(sa.text(f"COMMENT ON DATABASE \"{database}\" IS '{text}'"))
            step(1)
        return _pg_copy(spec.name, url, moved, reused=False)
    finally:
        admin.dispose()


def _pg_copy(dataset: str, url: URL, shift: DateShift, *, reused: bool) -> DatasetCopy:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        inspector = sa.inspect(engine)
        tables, views = tuple(sorted(inspector.get_table_names())), tuple(sorted(inspector.get_view_names()))
    finally:
        engine.dispose()
    return DatasetCopy(
        dataset=dataset,
        engine="postgresql",
        database=url.database or "",
        host=url.host or "",
        port=url.port or 5432,
        username=url.username or "",
        password=url.password or "",
        shift=shift,
        tables=tables,
        views=views,
        reused=reused,
    )


# --- portable copies (SQLite, MariaDB) -------------------------------------------------------------


# Seconds only: the form SQLite's own datetime() writes (and the demo database uses).
_SQLITE_DATETIME = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d"


def _portable_type(column_type: sa.types.TypeEngine, engine: str, *, keyed: bool) -> sa.types.TypeEngine:
    """A type every target engine understands for a reflected PostgreSQL column type."""
    if isinstance(column_type, pg_types.DOMAIN):
        return _portable_type(column_type.data_type, engine, keyed=keyed)
    if isinstance(column_type, sa.Enum):
        return sa.String(max((len(e) for e in column_type.enums), default=32))
    if isinstance(column_type, (pg_types.ARRAY, pg_types.TSVECTOR, pg_types.INTERVAL)):
        return sa.Text()
    if isinstance(column_type, (pg_types.JSON, pg_types.JSONB, sa.JSON)):
        return sa.JSON()
    if isinstance(column_type, sa.Uuid):
        return sa.String(36)
    if isinstance(column_type, sa.LargeBinary):
        return sa.LargeBinary().with_variant(mysql_types.LONGBLOB(), "mysql")
    if isinstance(column_type, sa.Boolean):
        return sa.Boolean()
    if isinstance(column_type, sa.BigInteger):
        return sa.BigInteger()
    if isinstance(column_type, sa.SmallInteger):
        return sa.SmallInteger()
    if isinstance(column_type, sa.Integer):
        return sa.Integer()
    if isinstance(column_type, sa.Float):  # real and double precision: doubles everywhere
        return sa.Double()
    if isinstance(column_type, sa.Numeric):
        if column_type.precision is None:
            return sa.Numeric(38, 10)
        return sa.Numeric(column_type.precision, column_type.scale or 0)
    if isinstance(column_type, sa.DateTime):
        return sa.DateTime().with_variant(sqlite_types.DATETIME(storage_format=_SQLITE_DATETIME), "sqlite")
    if isinstance(column_type, sa.Date):
        return sa.Date()
    if isinstance(column_type, sa.Time):
        return sa.Time()
    if isinstance(column_type, sa.String) and not isinstance(column_type, sa.Text):
        if column_type.length:
            return sa.String(column_type.length)
        return sa.String(255) if keyed else sa.Text()
    if isinstance(column_type, sa.Text):
        return sa.String(255) if keyed else sa.Text().with_variant(mysql_types.LONGTEXT(), "mysql")
    try:
        return _portable_type(column_type.as_generic(), engine, keyed=keyed)
    except NotImplementedError:
        return sa.Text()


def _converter(column_type: sa.types.TypeEngine, engine: str) -> Callable[[Any], Any]:
    """Turns a value read from PostgreSQL into what the target column stores."""

    is_char = isinstance(column_type, sa.CHAR) or getattr(column_type, "__visit_name__", "") == "BPCHAR"
    if isinstance(column_type, pg_types.TSVECTOR):
        return lambda value: None if value is None else str(value)

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return ",".join("" if v is None else str(v) for v in value)
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        if isinstance(value, Decimal) and engine == "sqlite":
            return float(value)
        if isinstance(value, memoryview):
            return value.tobytes()
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, timedelta):
            return str(value)
        if isinstance(value, str) and is_char:
            return value.rstrip(" ")
        return value

    return convert


def _keyed_columns(table: sa.Table) -> set[str]:
    keyed = {c.name for c in table.primary_key.columns}
    for constraint in table.constraints:
        if isinstance(constraint, (sa.ForeignKeyConstraint, sa.UniqueConstraint)):
            keyed |= {c.name for c in constraint.columns}
    for index in table.indexes:
        keyed |= {c.name for c in index.columns if isinstance(c, sa.Column)}
    for other in table.metadata.tables.values():
        for fk in other.foreign_keys:
            if fk.column.table is table:
                keyed.add(fk.column.name)
    return keyed


def _target_metadata(source: sa.MetaData, engine: str, names: list[str]) -> sa.MetaData:
    target = sa.MetaData()
    wanted = set(names)
    for name in names:
        table = source.tables[name]
        keyed = _keyed_columns(table)
        columns = [
            sa.Column(
                c.name,
                _portable_type(c.type, engine, keyed=c.name in keyed),
                primary_key=c.primary_key,
                nullable=c.nullable or c.primary_key,
                autoincrement=False,
            )
            for c in table.columns
        ]
        constraints: list[sa.schema.SchemaItem] = []
        for fk in table.foreign_key_constraints:
            referred = fk.referred_table.name
            if referred not in wanted:
                continue
            constraints.append(
                sa.ForeignKeyConstraint(
                    [c.name for c in fk.columns],
                    [f"{referred}.{e.column.name}" for e in fk.elements],
                    name=fk.name,
                )
            )
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint) and not isinstance(constraint, sa.PrimaryKeyConstraint):
                constraints.append(sa.UniqueConstraint(*[c.name for c in constraint.columns], name=constraint.name))
        new = sa.Table(name, target, *columns, *constraints)
        for index in table.indexes:
            cols = [c for c in index.expressions if isinstance(c, sa.Column)]
            if not cols or len(cols) != len(index.expressions):
                continue  # expression indexes (full text, lower(...)) stay PostgreSQL's own
            if engine == "mysql" and any(isinstance(new.c[c.name].type, sa.Text) for c in cols):
                continue
            sa.Index(index.name, *[new.c[c.name] for c in cols], unique=bool(index.unique))
    return target


def _target_marker_read(engine: str, admin_url: str, database: str) -> dict | None:
    if engine == "sqlite":
        path = Path(database).with_suffix(".marker.json")
        if not Path(database).exists() or not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:
            return None
    admin = _admin_engine(admin_url)
    try:
        with admin.connect() as conn:
            row = conn.execute(
                sa.text("SELECT schema_comment FROM information_schema.schemata WHERE schema_name = :name"),
                {"name": database},
            ).first()
    finally:
        admin.dispose()
    if row is None:
        return None
    try:
        return json.loads(row[0] or "")
    except ValueError:
        return {}


def _verify_view(source: sa.Connection, target: sa.Connection, name: str) -> str:
    """Why the target's view differs from PostgreSQL's, or "" when they return the same rows."""
    quoted = f'"{name}"' if target.dialect.name != "mysql" else f"`{name}`"
    try:
        expected = source.execute(sa.text(f'SELECT * FROM "{name}"')).mappings().all()
        got = target.execute(sa.text(f"SELECT * FROM {quoted}")).mappings().all()
    except sa.exc.DBAPIError as exc:
        return f"it fails there ({type(exc.orig).__name__})"
    if len(expected) != len(got):
        return f"it returns {len(got)} rows instead of {len(expected)}"
    if expected and list(expected[0].keys()) != list(got[0].keys()):
        return "it returns other columns"

    def canon(rows) -> Counter:
        return Counter(tuple(normalise(v) for v in row.values()) for row in rows)

    return "" if canon(expected) == canon(got) else "it returns other values"


_SQLITE_TRUNC = {"day": "start of day", "month": "start of month", "year": "start of year"}


def view_sql_for(definition: str, dialect: str) -> str:
    """A PostgreSQL view's SELECT in another dialect, with the rewrites sqlglot does not make itself.

    `x = ANY (ARRAY[...])` (how PostgreSQL prints `x IN (...)`) becomes IN again; casts to the
    database's own types (enums) are dropped, since the copies store them as text; a bare numeric
    cast keeps its decimals on MySQL; date_trunc to a day, month or year becomes SQLite's date().
    """
    import sqlglot
    from sqlglot import exp

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.EQ) and isinstance(node.expression, exp.Any):
            array = node.expression.this
            while isinstance(array, (exp.Paren, exp.Cast)):  # (ARRAY['UK'::varchar, ...])::text[]
                array = array.this
            if isinstance(array, exp.Array):
                return exp.In(this=node.this, expressions=list(array.expressions))
        if isinstance(node, exp.Cast):
            to = node.to
            if to.this == exp.DataType.Type.USERDEFINED:
                return node.this
            if dialect == "mysql" and to.this == exp.DataType.Type.DECIMAL and not to.expressions:
                return exp.cast(node.this, "DECIMAL(38, 10)")
        if dialect == "sqlite" and isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)):
            unit = node.args.get("unit")
            unit_name = (unit.name if unit is not None else "").lower()
            if unit_name in _SQLITE_TRUNC:
                return exp.func("date", node.this, exp.Literal.string(_SQLITE_TRUNC[unit_name]))
        return node

    # Twice: a rewritten node's children (the IN list's enum casts) are only visited on the second pass.
    tree = sqlglot.parse_one(definition, read="postgres").transform(rewrite).transform(rewrite)
    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "not supported" warnings: whatever does not translate fails the check below
    try:
        return tree.sql(dialect=dialect)
    finally:
        quiet.setLevel(level)


def _copy_views(
    source: sa.Engine, target: sa.Engine, engine: str, names: Iterable[str], available: set[str]
) -> tuple[list[str], list[str]]:
    import sqlglot

    dialect = "mysql" if engine == "mysql" else "sqlite"
    inspector = sa.inspect(source)
    kept, skipped = [], []
    with source.connect() as src:
        for name in names:
            definition = (inspector.get_view_definition(name) or "").strip().rstrip(";")
            used = {t.name for t in sqlglot.parse_one(definition, read="postgres").find_all(sqlglot.exp.Table)}
            missing = used - available - set(kept)
            if missing:
                skipped.append(f"view {name}: needs {', '.join(sorted(missing))}, not copied")
                continue
            try:
                sql = view_sql_for(definition, dialect)
            except sqlglot.errors.SqlglotError as exc:
                skipped.append(f"view {name}: sqlglot cannot translate it ({type(exc).__name__})")
                continue
            quoted = f"`{name}`" if engine == "mysql" else f'"{name}"'
            try:
                with target.begin() as conn:
                    conn.execute(sa.text(f"CREATE VIEW {quoted} AS {sql}"))
            except sa.exc.DBAPIError as exc:
                skipped.append(f"view {name}: the translation is refused ({type(exc.orig).__name__})")
                continue
            with target.connect() as dst:
                why = _verify_view(src, dst, name)
            if why:
                with target.begin() as conn:
                    conn.execute(sa.text(f"DROP VIEW {quoted}"))
                skipped.append(f"view {name}: not kept, {why} (compared with PostgreSQL)")
                continue
            kept.append(name)
    return kept, skipped


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0


def _rows(source: sa.Connection, table: sa.Table) -> Iterator[list[dict]]:
    result = source.execution_options(yield_per=BATCH).execute(sa.select(table))
    for partition in result.mappings().partitions(BATCH):
        yield [dict(row) for row in partition]


def _sorted_tables(metadata: sa.MetaData) -> list[str]:
    """Tables, referenced ones first. Mutual references (Sakila's store and staff) cannot be ordered;
    that is fine here: MariaDB loads with its key checks off and SQLite does not check them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot correctly sort tables", category=sa.exc.SAWarning)
        return [t.name for t in metadata.sorted_tables]


def copy_database(
    *,
    source_url: str,
    engine: str,
    database: str,
    fingerprint: str,
    dataset: str,
    shift: DateShift | None = None,
    tables: Iterable[str] | None = None,
    directory: Path | None = None,
    server_url: str = MYSQL_URL,
    progress: bool = True,
) -> DatasetCopy:
    """Copy a PostgreSQL database's tables (and views that translate) to SQLite or MariaDB, or reuse an unchanged copy.

    `fingerprint` identifies the source's content (a copy made from another fingerprint is rebuilt);
    `tables` limits the copy to some tables (foreign keys to tables left out are dropped).
    """
    if engine not in ("sqlite", "mysql"):
        raise DatasetError(f"copies are made for sqlite or mysql, not {engine!r}")
    _check_name(database)
    shift = shift or DateShift("none")
    source = sa.create_engine(source_url, poolclass=sa.NullPool)
    metadata = sa.MetaData()
    metadata.reflect(source, views=False)
    ordered = _sorted_tables(metadata)
    names = ordered if tables is None else list(tables)
    unknown = [n for n in names if n not in metadata.tables]
    if unknown:
        source.dispose()
        raise DatasetError(f"{dataset} has no table(s) {', '.join(unknown)}")
    names = [n for n in ordered if n in set(names)]
    marker = {
        "fingerprint": fingerprint,
        "loader": LOADER_VERSION,
        "tables": names if tables is not None else "all",
        "shift": shift.as_dict(),
    }
    if engine == "sqlite":
        directory = Path(directory or tempfile.gettempdir())
        directory.mkdir(parents=True, exist_ok=True)
        location = str((directory / f"{database}.sqlite3").resolve())
    else:
        location = database
    try:
        found = _target_marker_read(engine, server_url, location)
        if found is not None and {k: found.get(k) for k in marker} == marker:
            return _target_copy(
                dataset, engine, location, server_url, shift, found["views_kept"], found["skipped"], reused=True
            )
        return _build_copy(
            source, metadata, names, engine, location, server_url, dataset, shift, marker, progress=progress
        )
    finally:
        source.dispose()


def _build_copy(
    source: sa.Engine,
    metadata: sa.MetaData,
    names: list[str],
    engine: str,
    location: str,
    server_url: str,
    dataset: str,
    shift: DateShift,
    marker: dict,
    *,
    progress: bool,
) -> DatasetCopy:
    target_metadata = _target_metadata(metadata, engine, names)
    building = location
    if engine == "sqlite":
        building = f"{location}.building"
        Path(building).unlink(missing_ok=True)
        Path(location).with_suffix(".marker.json").unlink(missing_ok=True)
        target = sa.create_engine(f"sqlite:///{building}", poolclass=sa.NullPool)
    else:
        admin = _admin_engine(server_url)
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{location}`"))
                conn.execute(sa.text(f"CREATE DATABASE `{location}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        finally:
            admin.dispose()
        target = sa.create_engine(_database_url(server_url, location), poolclass=sa.NullPool)
    try:
        with _Progress(progress) as bar:
            target_metadata.create_all(target)
            with source.connect() as src:
                counts = {n: _count(src, metadata.tables[n]) for n in names}
                for name in names:
                    table = target_metadata.tables[name]
                    source_columns = metadata.tables[name].c
                    converters = {c.name: _converter(source_columns[c.name].type, engine) for c in table.columns}
                    advance = bar.task(f"{dataset} -> {engine}: {name}", counts[name] or 0)
                    with target.begin() as dst:
                        if engine == "mysql":
                            dst.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
                        for batch in _rows(src, metadata.tables[name]):
                            rows = [{k: converters[k](v) for k, v in row.items()} for row in batch]
                            dst.execute(table.insert(), rows)
                            advance(len(rows))
            view_names = sorted(sa.inspect(source).get_view_names())
            advance = bar.task(f"{dataset} -> {engine}: views", len(view_names))
            kept, skipped = _copy_views(source, target, engine, view_names, set(names))
            advance(len(view_names))
        marker = {**marker, "views_kept": kept, "skipped": skipped}
    except Exception:
        target.dispose()
        if engine == "sqlite":
            Path(building).unlink(missing_ok=True)
        raise
    target.dispose()
    if engine == "sqlite":
        shutil.move(building, location)
        Path(location).with_suffix(".marker.json").write_text(json.dumps(marker))
    else:
        admin = _admin_engine(server_url)
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f"ALTER DATABASE `{location}` COMMENT = :marker"), {"marker": json.dumps(marker)})
        finally:
            admin.dispose()
    return _target_copy(dataset, engine, location, server_url, shift, kept, skipped, reused=False)


def _target_copy(
    dataset: str,
    engine: str,
    location: str,
    server_url: str,
    shift: DateShift,
    views: list[str],
    skipped: list[str],
    *,
    reused: bool,
) -> DatasetCopy:
    url = _database_url(server_url, location) if engine == "mysql" else None
    target = sa.create_engine(url if url is not None else f"sqlite:///{location}", poolclass=sa.NullPool)
    try:
        tables = tuple(sorted(sa.inspect(target).get_table_names()))
    finally:
        target.dispose()
    common = {"dataset": dataset, "engine": engine, "database": location, "shift": shift, "tables": tables}
    common |= {"views": tuple(views), "skipped": tuple(skipped), "reused": reused}
    if url is None:
        return DatasetCopy(**common)
    return DatasetCopy(
        **common, host=url.host or "", port=url.port or 3306, username=url.username or "", password=url.password or ""
    )


# --- the one entry point -------------------------------------------------------------------------------


def dataset_load(
    *,
    dataset: str,
    engine: str = "postgresql",
    database: str | None = None,
    shift: str = "weeks",
    tables: Iterable[str] | None = None,
    directory: Path | None = None,
    progress: bool = True,
    today: date | None = None,
) -> DatasetCopy:
    """A dataset on an engine, loaded or reused: PostgreSQL from the SQL files, the others copied from it.

    `database` defaults to the stable bench_<dataset>; tests pass a unique name (see `unique_name`).
    """
    if engine not in ENGINES:
        raise DatasetError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    database = database or f"bench_{dataset}"
    postgres = load_postgres(dataset=dataset, database=database, shift=shift, progress=progress, today=today)
    if engine == "postgresql":
        return postgres
    fingerprint = _pg_marker_fingerprint(database)
    return copy_database(
        source_url=postgres.url,
        engine=engine,
        database=database,
        fingerprint=fingerprint,
        dataset=dataset,
        shift=postgres.shift,
        tables=tables,
        directory=directory,
        progress=progress,
    )


def _pg_marker_fingerprint(database: str) -> str:
    admin = _admin_engine(POSTGRES_URL)
    try:
        marker = _pg_marker(admin, database) or {}
    finally:
        admin.dispose()
    return hashlib.sha256(json.dumps(marker, sort_keys=True).encode()).hexdigest()[:16]


def dataset_drop(copy: DatasetCopy) -> None:
    """Remove a copy (tests drop their uniquely named ones)."""
    if copy.engine == "sqlite":
        Path(copy.database).unlink(missing_ok=True)
        Path(copy.database).with_suffix(".marker.json").unlink(missing_ok=True)
        return
    admin = _admin_engine(POSTGRES_URL if copy.engine == "postgresql" else MYSQL_URL)
    try:
        if copy.engine == "postgresql":
            _pg_drop(admin, copy.database)
        else:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{copy.database}`"))
    finally:
        admin.dispose()


def unique_name(prefix: str) -> str:
    """A database name no other run uses, e.g. for a test: test_northwind_1a2b3c4d."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def dataset_session(copy: DatasetCopy) -> Iterator[sa.Connection]:
    """A read connection to a copy (for reference queries)."""
    engine = sa.create_engine(copy.url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def default_directory() -> Path:
    """Where the bench keeps its SQLite copies: NECTAR_DATA_DIR/datasets, else .nectar/datasets of the checkout."""
    base = os.environ.get("NECTAR_DATA_DIR") or Path(__file__).resolve().parents[1] / ".nectar"
    return Path(base) / "datasets"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", metavar="DATASET", help=f"one of {', '.join(DATASETS)} (default: all)")
    parser.add_argument("--engine", action="append", choices=ENGINES, help="engines to load (default: all three)")
    parser.add_argument("--shift", choices=SHIFTS, default="weeks")
    args = parser.parse_args()
    unknown = [n for n in args.datasets if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    for name in args.datasets or list(DATASETS):
        for engine in args.engine or list(ENGINES):
            copy = dataset_load(dataset=name, engine=engine, shift=args.shift, directory=default_directory())
            state = "reused" if copy.reused else "loaded"
            print(f"{copy.display}: {state}; {len(copy.tables)} tables, {len(copy.views)} views; {copy.shift_text}")
            for line in copy.skipped:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
