"""Dialect-correct SQL fragments: quoting, date cut-offs, calendar periods and time buckets.

Every value is a named bind (:name); identifiers come from the introspected schema and are
quoted when they are not plain lowercase words or are reserved.
"""

from __future__ import annotations

import re

# The bound parameter that carries a ranking's row count ("top 10 ...").
ROW_LIMIT_PARAM = "top_n"
SINCE_PARAM = "since"  # the first day of a window the caller gives ("since a given date")

DIALECTS = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}

RESERVED = frozenset(
    [
        "all",
        "and",
        "any",
        "as",
        "asc",
        "between",
        "by",
        "case",
        "check",
        "column",
        "constraint",
        "create",
        "cross",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "delete",
        "desc",
        "distinct",
        "else",
        "end",
        "except",
        "exists",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "in",
        "index",
        "inner",
        "insert",
        "intersect",
        "interval",
        "into",
        "is",
        "join",
        "key",
        "keys",
        "left",
        "like",
        "limit",
        "natural",
        "not",
        "null",
        "of",
        "offset",
        "on",
        "or",
        "order",
        "outer",
        "primary",
        "references",
        "right",
        "row",
        "rows",
        "select",
        "set",
        "some",
        "table",
        "then",
        "to",
        "true",
        "union",
        "unique",
        "update",
        "user",
        "using",
        "values",
        "when",
        "where",
        "window",
        "with",
    ]
)
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


def normalize_dialect(dialect: str | None) -> str:
    return DIALECTS.get((dialect or "postgres").lower(), (dialect or "postgres").lower())


def quote(name: str, dialect: str) -> str:
    if _PLAIN.match(name) and name not in RESERVED:
        return name
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def rolling_cutoff(unit: str, param: str, dialect: str) -> str:
    """The date `:param` units (day, month, year) before today."""
    if dialect == "postgres":
        if unit == "day":
            return f"CURRENT_DATE - CAST(:{param} AS INTEGER)"
        return f"CURRENT_DATE - make_interval({unit}s => CAST(:{param} AS INTEGER))"
    if dialect == "mysql":
        return f"DATE_SUB(CURRENT_DATE, INTERVAL :{param} {unit.upper()})"
    return f"date('now', '-' || :{param} || ' {unit}s')"


def date_param(param: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"date(:{param})"
    return f"CAST(:{param} AS DATE)"


def period_start(period: str, dialect: str, *, previous: bool = False) -> str:
    """First day of the current (or previous) calendar week, month, quarter or year."""
    if dialect == "postgres":
        start = f"CAST(date_trunc('{period}', CURRENT_DATE) AS DATE)"
        if previous:
            step = {"week": "7 days", "month": "1 month", "quarter": "3 months", "year": "1 year"}[period]
            start = f"CAST(date_trunc('{period}', CURRENT_DATE) - INTERVAL '{step}' AS DATE)"
        return start
    if dialect == "mysql":
        start = {
            "week": "DATE_SUB(CURRENT_DATE, INTERVAL WEEKDAY(CURRENT_DATE) DAY)",
            "month": "DATE_SUB(CURRENT_DATE, INTERVAL DAYOFMONTH(CURRENT_DATE) - 1 DAY)",
            "quarter": "DATE_ADD(MAKEDATE(YEAR(CURRENT_DATE), 1), INTERVAL QUARTER(CURRENT_DATE) - 1 QUARTER)",
            "year": "MAKEDATE(YEAR(CURRENT_DATE), 1)",
        }[period]
        if previous:
            start = f"DATE_SUB({start}, INTERVAL 1 {period.upper()})"
        return start
    modifiers = {
        "week": "'-6 days', 'weekday 1'",
        "month": "'start of month'",
        "quarter": "'start of month', '-' || ((CAST(strftime('%m', 'now') AS INTEGER) - 1) % 3) || ' months'",
        "year": "'start of year'",
    }[period]
    if previous:
        step = {"week": "'-7 days'", "month": "'-1 months'", "quarter": "'-3 months'", "year": "'-1 years'"}[period]
        return f"date('now', {modifiers}, {step})"
    return f"date('now', {modifiers})"


def time_bucket(expr: str, grain: str, dialect: str) -> str:
    """A text label of the period a date falls in: YYYY-MM-DD (day, week start), YYYY-MM, YYYY-Qn, YYYY."""
    if dialect == "postgres":
        return {
            "day": f"to_char({expr}, 'YYYY-MM-DD')",
            "week": f"to_char(date_trunc('week', {expr}), 'YYYY-MM-DD')",
            "month": f"to_char({expr}, 'YYYY-MM')",
            "quarter": f"to_char({expr}, 'YYYY-\"Q\"Q')",
            "year": f"to_char({expr}, 'YYYY')",
        }[grain]
    if dialect == "mysql":
        return {
            "day": f"DATE_FORMAT({expr}, '%Y-%m-%d')",
            "week": f"DATE_FORMAT(DATE_SUB({expr}, INTERVAL WEEKDAY({expr}) DAY), '%Y-%m-%d')",
            "month": f"DATE_FORMAT({expr}, '%Y-%m')",
            "quarter": f"CONCAT(YEAR({expr}), '-Q', QUARTER({expr}))",
            "year": f"DATE_FORMAT({expr}, '%Y')",
        }[grain]
    return {
        "day": f"strftime('%Y-%m-%d', {expr})",
        "week": f"date({expr}, '-6 days', 'weekday 1')",
        "month": f"strftime('%Y-%m', {expr})",
        "quarter": f"strftime('%Y', {expr}) || '-Q' || ((CAST(strftime('%m', {expr}) AS INTEGER) + 2) / 3)",
        "year": f"strftime('%Y', {expr})",
    }[grain]


def sql_parses(sql: str, dialect: str) -> bool:
    """Whether sqlglot reads the statement as exactly one SELECT in this dialect."""
    try:
        import sqlglot
        from sqlglot import exp

        statements = sqlglot.parse(sql, read=dialect)
    except Exception:
        return False
    return len(statements) == 1 and isinstance(statements[0], exp.Select)


def sql_tables(sql: str, dialect: str) -> list[tuple[str | None, str]]:
    """Tables a statement reads (schema or None, name), in order of appearance."""
    import sqlglot
    from sqlglot import exp

    seen: list[tuple[str | None, str]] = []
    for table in sqlglot.parse_one(sql, read=dialect).find_all(exp.Table):
        key = (table.db or None, table.name)
        if key not in seen:
            seen.append(key)
    return seen


def bind_names(sql: str) -> list[str]:
    """Named binds (:name) outside string literals, in order of first appearance."""
    stripped = re.sub(r"'(?:[^']|'')*'", "''", sql)
    names: list[str] = []
    for name in re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", stripped):
        if name not in names:
            names.append(name)
    return names
