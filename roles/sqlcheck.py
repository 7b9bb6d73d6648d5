"""The allow-list check of read-only SQL written for generated endpoints (sqlglot AST).

Exactly one SELECT (with UNION/INTERSECT/EXCEPT and CTEs); no DML or DDL anywhere, no INTO,
no locking clauses, no variables; every table and view is granted SELECT (CTE names excluded,
the default schema applied); columns respect the Role's allow/deny lists; functions are
side-effect-free built-ins or granted routines; objects with a row filter are replaced by a
filtered subquery. Binds are named (:name) and must match the given params exactly. The SQL
that runs is regenerated from the checked AST with every identifier resolved and quoted.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import logging
import re
import uuid
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import Scope, build_scope

from roles.permissions import Grant
from roles.results import CheckedSQL, ExecutorError
from roles.values import coerce_value

logger = logging.getLogger(__name__)

# Values a bind may carry: typed values go to the driver as they are, never into the SQL text.
BIND_TYPES = (str, int, float, bool, decimal.Decimal, dt.date, dt.time, uuid.UUID)


MAX_SQL_LENGTH = 20_000
INTERNAL_PREFIX = "nectar_"
SQLGLOT_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite", "mssql": "tsql", "oracle": "oracle"}

_FORBIDDEN_NODES = tuple(
    getattr(exp, name)
    for name in (
        "DDL", "DML", "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterTable", "Command",
        "Commit", "Rollback", "Transaction", "Set", "SetItem", "Use", "Into", "Lock", "Copy", "LoadData", "Pragma",
        "Grant", "TruncateTable", "Analyze", "Describe", "Kill", "Execute", "Call", "Returning", "PropertyEQ",
        "SessionParameter", "Parameter", "NextValueFor", "Cache", "Uncache", "Refresh", "Summarize",
    )
    if hasattr(exp, name)
)  # fmt: skip

# Built-ins sqlglot does not model as typed functions but that are side-effect free.
SAFE_FUNCTIONS = frozenset(
    " ".join(
        (
            "abs age array_length array_position array_to_string array_upper array_lower ascii btrim cardinality",
            "cbrt ceil ceiling char_length character_length chr concat concat_ws date_part date_trunc decode",
            "degrees div encode exp floor format greatest initcap isfinite json_agg json_array_length",
            "json_build_array json_build_object json_extract_path json_extract_path_text json_object_agg",
            "json_typeof jsonb_agg jsonb_array_length jsonb_build_array jsonb_build_object jsonb_extract_path",
            "jsonb_extract_path_text jsonb_object_agg jsonb_typeof justify_days justify_hours justify_interval",
            "least left length ln log lower lpad ltrim make_date make_interval make_time make_timestamp",
            "make_timestamptz md5 mod nullif num_nonnulls num_nulls octet_length overlay pi position power",
            "quote_ident quote_literal radians regexp_match regexp_matches regexp_replace regexp_split_to_array",
            "repeat replace reverse right round rpad rtrim sign sqrt split_part starts_with string_to_array",
            "strpos substr substring to_char to_date to_number to_timestamp translate trim trunc upper",
            "width_bucket timezone date_add date_sub datediff timestampdiff timestampadd dayofweek dayofmonth",
            "dayofyear weekday week yearweek month monthname year day hour minute second quarter last_day",
            "from_unixtime unix_timestamp str_to_date date_format time_format curdate curtime ifnull if isnull",
            "instr locate lcase ucase mid field elt find_in_set format_bytes hex unhex bin oct conv crc32 sha1",
            "sha2 json_extract json_unquote json_object json_array json_arrayagg json_objectagg json_contains",
            "json_length json_keys json_value group_concat truncate strftime julianday date time datetime",
            "unixepoch printf typeof iif ifnull total makedate",
        )
    ).split()
)


_BIND_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Which checker made a stored check: this module's text and sqlglot's version. A release that
# changes either checks every stored SQL again rather than trusting an older verdict.
CHECKER_VERSION = hashlib.sha256(Path(__file__).read_bytes() + sqlglot.__version__.encode()).hexdigest()[:16]


def internal_binds(checked: CheckedSQL) -> dict:
    return dict(getattr(checked, "internal_params", {}) or {})


def _refuse(code: str, message: str) -> ExecutorError:
    return ExecutorError(code, message, field="sql")


class _Resolver:
    def __init__(self, schema: dict, grants: list[Grant]):
        self.schema = schema
        self.engine = schema["engine"]
        self.grants = grants

    def name_matches(self, actual: str, ident: exp.Identifier | str, *, table: bool) -> bool:
        written = ident.name if isinstance(ident, exp.Identifier) else str(ident)
        quoted = isinstance(ident, exp.Identifier) and ident.quoted
        if self.engine == "postgresql":
            return actual == (written if quoted else written.lower())
        if self.engine == "sqlite" or (self.engine == "mysql" and not table):
            return actual.casefold() == written.casefold()
        return actual == written

    def schema_matches(self, actual: str, ident) -> bool:
        if ident is None:
            return actual == self.schema["default_schema"] or self.engine == "sqlite"
        return self.name_matches(actual, ident, table=True)

    def table_grant(self, table: exp.Table) -> Grant:
        name_ident = table.this
        db_ident = table.args.get("db")
        where = table.sql()
        if table.args.get("catalog") is not None:
            raise _refuse("forbidden", f"Three-part names are not allowed: {where}.")
        if self.engine == "sqlite" and db_ident is not None and db_ident.name.casefold() != "main":
            raise _refuse("forbidden", f"Only the main database may be read: {where}.")
        sqlite_db = None if self.engine == "sqlite" else db_ident
        for grant in self.grants:
            if (
                grant.kind in ("table", "view")
                and self.name_matches(grant.object_name, name_ident, table=True)
                and self.schema_matches(grant.schema, sqlite_db)
            ):
                if "SELECT" not in grant.actions:
                    raise _refuse("forbidden", f"The role may not SELECT from {where}.")
                return grant
        for obj in self.schema.get("objects", []):
            if (
                obj["kind"] in ("table", "view")
                and self.name_matches(obj["name"], name_ident, table=True)
                and self.schema_matches(obj["schema"], sqlite_db)
            ):
                raise _refuse("forbidden", f"The role has no access to {where}.")
        raise _refuse("unknown_object", f"There is no granted table or view {where}.")

    def function_allowed(self, func: exp.Anonymous, qualifier: str | None) -> Grant | None:
        name = func.name
        for grant in self.grants:
            if grant.kind != "function" or "EXECUTE" not in grant.actions:
                continue
            if not self.name_matches(grant.object_name, exp.to_identifier(name), table=True):
                continue
            if qualifier is None:
                if grant.schema == self.schema["default_schema"]:
                    return grant
            elif self.name_matches(grant.schema, exp.to_identifier(qualifier), table=True):
                return grant
        if qualifier is None and name.lower() in SAFE_FUNCTIONS:
            return None
        shown = f"{qualifier}.{name}" if qualifier else name
        raise _refuse(
            "forbidden", f"Function {shown}() is not allowed (only side-effect-free built-ins and granted functions)."
        )


def _parse(sql: str, dialect: str) -> exp.Expression:
    if not isinstance(sql, str) or not sql.strip():
        raise _refuse("invalid_sql", "sql must be a non-empty string.")
    if len(sql) > MAX_SQL_LENGTH:
        raise _refuse("invalid_sql", f"sql is longer than {MAX_SQL_LENGTH} characters.")
    if "\x00" in sql:
        raise _refuse("invalid_sql", "sql contains a NUL character.")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else "syntax error"
        raise _refuse("invalid_sql", f"The SQL could not be parsed: {first}") from None
    if len(statements) != 1:
        raise _refuse("invalid_sql", f"Exactly one statement is allowed; found {len(statements)}.")
    root = statements[0]
    while isinstance(root, exp.Subquery):
        root = root.this
    if not isinstance(root, exp.Select | exp.Union | exp.Intersect | exp.Except):
        kind = type(root).__name__.upper()
        raise _refuse("invalid_sql", f"Only SELECT queries are allowed, not {kind}.")
    return statements[0]


def _check_nodes(ast: exp.Expression) -> None:
    for node in ast.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            what = {
                "Into": "SELECT INTO",
                "Lock": "locking clauses (FOR UPDATE/SHARE)",
                "PropertyEQ": "variable assignment",
                "SessionParameter": "session variables",
                "Parameter": "positional or driver-style parameters (write binds as :name)",
            }.get(type(node).__name__, f"{type(node).__name__.upper()} statements")
            raise _refuse("invalid_sql", f"Not allowed in read-only SQL: {what}.")


def _check_binds(ast: exp.Expression, params) -> tuple[str, ...]:
    if params is not None and not isinstance(params, dict):
        raise ExecutorError("invalid_argument", "params must be an object of name: value.", field="params")
    names = []
    for ph in ast.find_all(exp.Placeholder):
        if not _BIND_NAME.fullmatch(ph.name or ""):
            raise _refuse(
                "invalid_sql", "Positional parameters (?, $1) are not allowed; write named binds such as :name."
            )
        if ph.name.lower().startswith(INTERNAL_PREFIX):
            raise _refuse("invalid_sql", f"Bind names starting with {INTERNAL_PREFIX!r} are reserved.")
        if ph.name not in names:
            names.append(ph.name)
    if params is not None:
        missing = [n for n in names if n not in params]
        extra = [n for n in params if n not in names]
        if missing:
            raise ExecutorError("invalid_argument", f"Missing value for bind(s): {', '.join(missing)}.", field="params")
        if extra:
            raise ExecutorError(
                "invalid_argument", f"Unknown param(s) not used by the SQL: {', '.join(extra)}.", field="params"
            )
        for name in names:
            value = params[name]
            if not (value is None or isinstance(value, BIND_TYPES)):
                raise ExecutorError(
                    "invalid_argument",
                    f"params.{name} must be a string, number, boolean, date, time, UUID or null.",
                    field=f"params.{name}",
                )
    return tuple(names)


def _check_functions(ast: exp.Expression, resolver: _Resolver) -> list[tuple[str, str]]:
    used = []
    for func in ast.find_all(exp.Func):
        if isinstance(func, exp.Anonymous):
            parent = func.parent
            qualifier = None
            if isinstance(parent, exp.Dot) and parent.expression is func:
                qualifier = (
                    parent.this.name if isinstance(parent.this, exp.Column | exp.Identifier) else parent.this.sql()
                )
            grant = resolver.function_allowed(func, qualifier)
            if grant is not None:
                used.append((grant.schema, grant.object_name))
    return used


def _scope_source(scope: Scope, alias: str):
    while scope is not None:
        if alias in scope.sources:
            return scope.sources[alias]
        scope = scope.parent
    return None


def check_sql(*, sql: str, params, schema: dict, grants: list[Grant]) -> CheckedSQL:
    engine = schema["engine"]
    dialect = SQLGLOT_DIALECTS.get(engine, engine)
    ast = _parse(sql, dialect)
    _check_nodes(ast)
    bind_names = _check_binds(ast, params)
    resolver = _Resolver(schema, grants)
    objects = _check_functions(ast, resolver)

    try:
        root_scope = build_scope(ast)
        scopes = list(root_scope.traverse()) if root_scope else []
    except Exception as exc:
        raise _refuse("invalid_sql", f"The query's structure could not be analysed: {str(exc)[:200]}") from None

    cte_refs: set[int] = set()
    for scope in scopes:
        for _alias, (node, source) in scope.selected_sources.items():
            if isinstance(source, Scope) and isinstance(node, exp.Table):
                cte_refs.add(id(node))

    table_grants: dict[int, Grant] = {}
    for table in list(ast.find_all(exp.Table)):
        if id(table) in cte_refs:
            continue
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function such as generate_series(): checked as a function
        grant = resolver.table_grant(table)
        table_grants[id(table)] = grant
        if (grant.schema, grant.object_name) not in objects:
            objects.append((grant.schema, grant.object_name))

    restricted = {tid: g for tid, g in table_grants.items() if g.allowed_columns is not None}
    if restricted:
        _check_columns(ast, scopes, restricted, resolver)

    internal: dict = {}
    _rewrite_tables(ast, table_grants, engine, internal)
    _bind_colon_literals(ast, internal)
    for ph in list(ast.find_all(exp.Placeholder)):
        ph.replace(exp.Var(this=f":{ph.name}"))
    final_sql = ast.sql(dialect=dialect)
    checked = CheckedSQL(sql=final_sql, bind_names=bind_names, objects=tuple(objects), internal_params=internal)
    return checked


def _check_columns(ast, scopes, restricted: dict[int, Grant], resolver: _Resolver) -> None:
    """Every column reference in every clause is resolved against its table; denied or ungranted ones refuse.

    Every Column node of the tree is checked (not sqlglot's per-scope column lists, which leave out
    unqualified HAVING columns and ORDER BY names shared with a select alias), and so is every
    name of a JOIN ... USING. A qualified reference is checked against the table its qualifier
    names (in its scope or an enclosing one); an unqualified one against every restricted table
    visible from its scope, enclosing scopes included (correlated subqueries). This is
    deliberately conservative: a select alias named like a denied column cannot be ordered or
    grouped by (rename the alias), and NATURAL joins are refused on restricted tables.
    """
    names = ", ".join(sorted({g.object_name for g in restricted.values()}))
    for star in ast.find_all(exp.Star):
        if isinstance(star.parent, exp.Count):
            continue
        raise _refuse(
            "forbidden", f"SELECT * is not allowed on {names}, which has column restrictions; name the columns."
        )
    scope_of = {id(scope.expression): scope for scope in scopes}

    def enclosing(node) -> Scope | None:
        current = node.parent
        while current is not None:
            scope = scope_of.get(id(current))
            if scope is not None:
                return scope
            current = current.parent
        return None

    def visible(scope: Scope | None) -> list[tuple[str, Grant]]:
        """(alias, grant) of every restricted table visible from `scope` (all of them when unknown)."""
        if scope is None:
            return [(g.object_name, g) for g in restricted.values()]
        found = []
        while scope is not None:
            for alias, source in scope.sources.items():
                grant = restricted.get(id(source)) if isinstance(source, exp.Table) else None
                if grant is not None:
                    found.append((alias, grant))
            scope = scope.parent
        return found

    for join in ast.find_all(exp.Join):
        if join.text("method").upper() == "NATURAL":
            raise _refuse("forbidden", f"NATURAL joins are not allowed on {names} (column restrictions).")
        for ident in join.args.get("using") or []:
            name = ident.this if isinstance(ident, exp.Column) else ident
            for _alias, grant in visible(enclosing(join)):
                _check_name(grant, name, resolver)

    for col in ast.find_all(exp.Column):
        if isinstance(col.this, exp.Star):
            raise _refuse("forbidden", f"t.* is not allowed on {names}, which has column restrictions.")
        scope = enclosing(col)
        if col.table:
            source = _scope_source(scope, col.table) if scope is not None else None
            if isinstance(source, exp.Table):
                grant = restricted.get(id(source))
                if grant is not None:
                    _check_column(grant, col, resolver)
            elif source is None:
                # A qualifier that names no source of the scope: the table's own name, or unknown.
                for _alias, grant in visible(scope):
                    if resolver.name_matches(grant.object_name, exp.to_identifier(col.table), table=True):
                        _check_column(grant, col, resolver)
            continue
        for alias, grant in visible(scope):
            if any(resolver.name_matches(c, col.this, table=False) for c in grant.column_names):
                _check_column(grant, col, resolver)
            elif resolver.name_matches(alias, col.this, table=False) or resolver.name_matches(
                grant.object_name, col.this, table=False
            ):
                raise _refuse(
                    "forbidden",
                    f"Whole-row references to {grant.object_name} are not allowed (column restrictions).",
                )


def _check_name(grant: Grant, ident, resolver: _Resolver) -> None:
    """A bare name (e.g. of JOIN ... USING) that is a column of `grant` must be granted."""
    for name in grant.column_names:
        if resolver.name_matches(name, ident, table=False):
            if name not in grant.allowed_columns:
                raise _refuse("forbidden", f"Column {name!r} of {grant.object_name!r} is not granted.")
            return


def _check_column(grant: Grant, col: exp.Column, resolver: _Resolver) -> None:
    for name in grant.column_names:
        if resolver.name_matches(name, col.this, table=False):
            if name not in grant.allowed_columns:
                raise _refuse("forbidden", f"Column {name!r} of {grant.object_name!r} is not granted.")
            return
    raise _refuse("unknown_column", f"{grant.object_name!r} has no column {col.name!r}.")


def _rewrite_tables(ast, table_grants: dict[int, Grant], engine: str, internal: dict) -> None:
    """Point each table reference at its resolved, quoted object; wrap row-filtered ones in a subquery."""
    for table in list(ast.find_all(exp.Table)):
        grant = table_grants.get(id(table))
        if grant is None:
            continue
        written = table.this
        alias = table.args.get("alias")
        target = exp.Table(
            this=exp.to_identifier(grant.object_name, quoted=True),
            db=None if engine == "sqlite" else exp.to_identifier(grant.schema, quoted=True),
        )
        if not grant.row_filter:
            table.set("this", target.this)
            table.set("db", target.args.get("db"))
            continue
        conditions = []
        for column, value in grant.row_filter.items():
            ident = exp.column(exp.to_identifier(column, quoted=True))
            if value is None:
                conditions.append(exp.Is(this=ident, expression=exp.Null()))
                continue
            name = f"{INTERNAL_PREFIX}rf_{len(internal)}"
            internal[name] = coerce_value(grant.column(column), value, f"rowFilter.{column}", engine)
            conditions.append(exp.EQ(this=ident, expression=exp.Placeholder(this=name)))
        inner = exp.select("*").from_(target).where(exp.and_(*conditions))
        alias_ident = (
            alias.this if alias is not None and alias.this else exp.to_identifier(written.name, quoted=written.quoted)
        )
        table.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=alias_ident)))


def _bind_colon_literals(ast, internal: dict) -> None:
    """String literals holding ':' become binds, so the driver never mistakes them for parameters."""
    for literal in list(ast.find_all(exp.Literal)):
        if literal.is_string and ":" in literal.this:
            if isinstance(literal.parent, exp.Interval):
                raise _refuse("invalid_sql", "Write interval literals containing ':' as a bind parameter.")
            name = f"{INTERNAL_PREFIX}lit_{len(internal)}"
            internal[name] = literal.this
            literal.replace(exp.Placeholder(this=name))
