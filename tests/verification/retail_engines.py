"""The small retail database of the planner tests on SQLite, PostgreSQL 15 and MariaDB, with the same rows.

Used by the compiler and verification tests to check that one interpretation means the same thing
on every engine.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from tests.agents.planner_fixtures import build_retail_sqlite, introspect

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
MYSQL_SERVER = "mysql+pymysql://root@127.0.0.1:3306"


def _copy(source_url: str, target_url: str) -> None:
    source = sa.create_engine(source_url)
    target = sa.create_engine(target_url)
    meta = sa.MetaData()
    meta.reflect(bind=source)
    copy = sa.MetaData()
    for table in meta.sorted_tables:
        columns = []
        for col in table.columns:
            try:
                kind = col.type.as_generic()
            except NotImplementedError:
                kind = sa.Text()
            if isinstance(kind, sa.types.NullType):
                kind = sa.Text()
            if target.dialect.name == "mysql" and isinstance(kind, sa.Text) and (col.primary_key or col.foreign_keys):
                kind = sa.String(64)
            if target.dialect.name == "mysql" and isinstance(kind, sa.Text):
                kind = sa.String(255)
            fks = [sa.ForeignKey(f"{fk.column.table.name}.{fk.column.name}") for fk in col.foreign_keys]
            columns.append(sa.Column(col.name, kind, *fks, primary_key=col.primary_key, nullable=col.nullable))
        sa.Table(table.name, copy, *columns)
    copy.create_all(target)
    with source.connect() as src, target.begin() as dst:
        for table in meta.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(table.select())]
            if rows:
                dst.execute(copy.tables[table.name].insert(), rows)
    source.dispose()
    target.dispose()


@contextmanager
def retail_databases(tmp: Path):
    """{"sqlite" | "postgres" | "mysql": url} of three copies of the retail database; dropped at the end."""
    sqlite_path = build_retail_sqlite(tmp / "retail.sqlite")
    sqlite_url = f"sqlite:///{sqlite_path}"
    name = f"nectar_compile_{uuid.uuid4().hex[:10]}"
    pg_admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    my_admin = sa.create_engine(f"{MYSQL_SERVER}/")
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    with my_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    urls = {"sqlite": sqlite_url, "postgres": f"{PG_SERVER}/{name}", "mysql": f"{MYSQL_SERVER}/{name}"}
    try:
        _copy(sqlite_url, urls["postgres"])
        _copy(sqlite_url, urls["mysql"])
        yield urls
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        with my_admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        pg_admin.dispose()
        my_admin.dispose()


def schema_of(url: str) -> dict:
    return introspect(url)
