"""Introspect a Service's schemas, tables, views, procedures and functions; cache the result on the Service."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from django.utils import timezone

from nectar import invalidation
from roles.connectors import ConnectorError, read_connection
from roles.connectors.errors import database_error_safe
from roles.connectors.postgresql import SYSTEM_SCHEMAS
from roles.connectors.types import json_type_for_sa_type

logger = logging.getLogger(__name__)

_COUNT_LIMIT = 100_000


def service_schema(*, service, refresh: bool = False) -> dict:
    """The Service's introspected schema, from its cache unless refresh is asked or nothing is cached."""
    if not refresh and service.schema_cache:
        return service.schema_cache
    return service_refresh_schema(service=service)


def service_refresh_schema(*, service) -> dict:
    """Introspect the database now and store the result in Service.schema_cache."""
    try:
        with read_connection(service=service, transaction=True) as (conn, engines):
            schema = _introspect(conn, engines)
    except sa.exc.DBAPIError as exc:
        safe = database_error_safe(exc)
        raise ConnectorError("error", f"Introspection failed: {safe.message}", retryable=True) from exc
    service.schema_cache = schema
    service.schema_refreshed_at = timezone.now()
    # update() rather than save(): updated_at must not change, or the engine pool would be rebuilt.
    type(service).objects.filter(pk=service.pk).update(
        schema_cache=schema, schema_refreshed_at=service.schema_refreshed_at
    )
    invalidation.changed(service.organization_id)  # other processes hear it from the database at commit
    return schema


def schema_find_object(schema: dict, name: str, schema_name: str | None = None) -> dict | None:
    """Find an object by exact name (and schema; the default schema when omitted)."""
    wanted_schema = schema_name or schema.get("default_schema")
    candidates = [o for o in schema.get("objects", []) if o["name"] == name]
    for obj in candidates:
        if obj["schema"] == wanted_schema:
            return obj
    if schema_name is None and len(candidates) == 1:
        return candidates[0]
    return None


def _schemas_to_read(conn, engines, default_schema: str) -> list[str]:
    wanted = engines.config.options.get("schemas")
    if wanted:
        return [str(s) for s in wanted]
    kind = engines.connector.kind
    if kind == "postgresql":
        names = sa.inspect(conn).get_schema_names()
        return [n for n in names if n not in SYSTEM_SCHEMAS and not n.startswith(("pg_temp", "pg_toast"))]
    return [default_schema]


def _introspect(conn: sa.Connection, engines) -> dict:
    connector = engines.connector
    default_schema = connector.default_schema(conn, engines.config)
    schemas = _schemas_to_read(conn, engines, default_schema)
    inspector = sa.inspect(conn)
    counts = connector.row_counts(conn, schemas) if hasattr(connector, "row_counts") else {}
    json_columns = connector.json_columns(conn, schemas) if hasattr(connector, "json_columns") else set()
    objects: list[dict] = []
    for schema_name in schemas:
        # SQLite's attached main database is addressed without a schema by SQLAlchemy.
        sa_schema = None if connector.kind == "sqlite" else schema_name
        tables = [(t, "table") for t in inspector.get_table_names(schema=sa_schema)]
        views = [(v, "view") for v in inspector.get_view_names(schema=sa_schema)]
        for name, kind in tables + views:
            if connector.kind == "sqlite" and name.startswith("sqlite_"):
                continue
            described = _describe(conn, inspector, connector, sa_schema, schema_name, name, kind, counts)
            for col in described["columns"]:
                if (schema_name, name, col["name"]) in json_columns:
                    col["json_type"], col["format"] = "object", None
            objects.append(described)
    objects.extend(connector.routines(conn, schemas))
    objects.sort(key=lambda o: (o["schema"], o["kind"], o["name"]))
    return {"engine": connector.kind, "default_schema": default_schema, "objects": objects}


def _describe(conn, inspector, connector, sa_schema, schema_name, name, kind, counts) -> dict:
    pk = []
    fks = []
    indexes = []
    if kind == "table":
        pk = list((inspector.get_pk_constraint(name, schema=sa_schema) or {}).get("constrained_columns") or [])
        for fk in inspector.get_foreign_keys(name, schema=sa_schema):
            fks.append(
                {
                    "columns": list(fk["constrained_columns"]),
                    "ref_schema": fk.get("referred_schema") or schema_name,
                    "ref_table": fk["referred_table"],
                    "ref_columns": list(fk["referred_columns"]),
                }
            )
        for ix in inspector.get_indexes(name, schema=sa_schema):
            indexes.append(
                {
                    "name": ix.get("name") or "",
                    "columns": [c for c in ix["column_names"] if c],
                    "unique": bool(ix["unique"]),
                }
            )
        for uc in inspector.get_unique_constraints(name, schema=sa_schema):
            if not any(i["name"] == uc.get("name") for i in indexes):
                indexes.append({"name": uc.get("name") or "", "columns": list(uc["column_names"]), "unique": True})
    columns = []
    for col in inspector.get_columns(name, schema=sa_schema):
        json_type, fmt = json_type_for_sa_type(col["type"])
        enum = getattr(col["type"], "enums", None)
        try:
            type_text = col["type"].compile(dialect=conn.dialect)
        except Exception:
            type_text = str(type(col["type"]).__name__).upper()
        default = col.get("default")
        columns.append(
            {
                "name": col["name"],
                "type": type_text,
                "json_type": json_type,
                "format": fmt,
                "nullable": bool(col.get("nullable", True)),
                "default": None if default is None else str(default),
                "primary_key": col["name"] in pk,
                "enum": list(enum) if enum else None,
                "comment": col.get("comment") or None,
            }
        )
    row_count = counts.get((schema_name, name))
    if row_count is None and kind == "table":
        row_count = _bounded_count(conn, connector, sa_schema, name)
    return {
        "schema": schema_name,
        "name": name,
        "kind": kind,
        "comment": _object_comment(conn, inspector, sa_schema, name),
        "columns": columns,
        "primary_key": pk,
        "foreign_keys": fks,
        "indexes": indexes,
        "row_count": row_count,
    }


def _object_comment(conn, inspector, sa_schema, name) -> str | None:
    """The table's or view's comment where the engine keeps one (PostgreSQL, MySQL), else None."""
    try:
        return (inspector.get_table_comment(name, schema=sa_schema) or {}).get("text") or None
    except NotImplementedError:  # SQLite keeps no comments
        return None


def _bounded_count(conn, connector, sa_schema, name) -> int | None:
    """Count rows up to a limit when the engine keeps no estimate (never analysed, or SQLite)."""
    table = sa.table(name, schema=sa_schema)
    inner = sa.select(sa.literal(1)).select_from(table).limit(_COUNT_LIMIT).subquery()
    try:
        with conn.begin_nested():
            return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar() or 0)
    except sa.exc.DBAPIError:
        logger.info("Could not count rows of %s", name)
        return None
