"""Dialect-correct SQL fragments for generated queries: quoting, literals, dates, windows and buckets.

PostgreSQL, MySQL/MariaDB and SQLite. Identifiers come from the introspected schema and are
quoted when they are not plain lowercase words or are reserved; values are bound parameters
(:name) or literals written by `literal`, never text from a caller.
"""

from __future__ import annotations

import re
from datetime import date, datetime

DIALECTS = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
ENGINE_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite", "mssql": "tsql", "oracle": "oracle"}

# Reserved words of PostgreSQL, MySQL/MariaDB and SQLite (and a few names every engine treats
# specially); an identifier that is one of them is quoted.
RESERVED = frozenset(
    str.split(
        """
    accessible add all alter analyse analyze and any array as asc asensitive asymmetric before between bigint binary
    blob both by call cascade case cast change char character check collate column condition constraint continue
    convert create cross cube cume_dist current_catalog current_date current_role current_time current_timestamp
    current_user cursor database databases date day day_hour day_microsecond day_minute day_second dec decimal declare
    default deferrable delayed delete dense_rank desc describe deterministic distinct distinctrow div do double drop
    dual each else elseif empty enclosed end escaped except exists exit explain false fetch first_value float float4
    float8 for force foreign from full fulltext function generated get glob grant group grouping groups having
    high_priority hour hour_microsecond hour_minute hour_second if ignore ilike in index infile initially inner inout
    insensitive insert int int1 int2 int3 int4 int8 integer intersect interval into io_after_gtids io_before_gtids is
    isnull iterate join json_table key keys kill lag last_value lateral lead leading leave left like limit linear lines
    load localtime localtimestamp lock long longblob longtext loop low_priority match maxvalue mediumblob mediumint
    mediumtext middleint minute minute_microsecond minute_second mod modifies month natural not notnull
    no_write_to_binlog
    nth_value ntile null numeric of offset on only optimize option optionally or order out outer outfile over
    partition percent_rank placing precision primary procedure purge range rank read reads read_write real recursive
    references regexp release rename repeat replace require resignal restrict return returning revoke right rlike row
    rows row_number schema schemas second second_microsecond select sensitive separator session_user set show signal
    smallint some spatial specific sql sqlexception sqlstate sqlwarning sql_big_result sql_calc_found_rows
    sql_small_result ssl starting status stored straight_join symmetric system system_user table terminated then time
    timestamp tinyblob tinyint tinytext to trailing trigger true undo union unique unlock unsigned update usage use
    user using utc_date utc_time utc_timestamp values varbinary varchar varcharacter variadic varying virtual when
    where while window with write xor year year_month zerofill
    """
    )
)
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
UNITS = ("day", "week", "month", "quarter", "year")


def normalize_dialect(dialect: str | None) -> str:
    return DIALECTS.get((dialect or "postgres").lower(), (dialect or "postgres").lower())


def quote(name: str, dialect: str) -> str:
    """An identifier as the dialect reads it: bare when plain and not reserved, quoted otherwise."""
    if _PLAIN.match(name) and name not in RESERVED:
        return name
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def qualified(obj: str, dialect: str, *, default_schema: str | None = None) -> str:
    """schema.name, quoted part by part; the default schema (and SQLite's main) is left out."""
    schema, _, name = obj.rpartition(".")
    if not schema or schema == default_schema or (dialect == "sqlite" and schema == "main"):
        return quote(name, dialect)
    return f"{quote(schema, dialect)}.{quote(name, dialect)}"


def literal(value, dialect: str) -> str:
    """A constant of the design as SQL text (strings escaped); dates become date expressions."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        if dialect == "sqlite":
            return "1" if value else "0"
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return date_literal(value.isoformat(sep=" "), dialect)
    if isinstance(value, date):
        return date_literal(value.isoformat(), dialect)
    text = str(value).replace("'", "''")
    if dialect == "mysql":
        text = text.replace("\\", "\\\\")
    return f"'{text}'"


def date_literal(text: str, dialect: str) -> str:
    escaped = text.replace("'", "''")
    if dialect == "sqlite":
        return f"'{escaped}'"
    return f"CAST('{escaped}' AS DATE)" if len(text) == 10 else f"CAST('{escaped}' AS TIMESTAMP)"


def date_param(name: str, dialect: str) -> str:
    """A date parameter sent as ISO text (YYYY-MM-DD)."""
    if dialect == "sqlite":
        return f"date(:{name})"
    return f"CAST(:{name} AS DATE)"


def today(dialect: str) -> str:
    return "date('now')" if dialect == "sqlite" else "CURRENT_DATE"


def shift(expr: str, amount: int, unit: str, dialect: str) -> str:
    """A date `amount` units after `expr` (negative: before)."""
    if unit == "week":
        amount, unit = amount * 7, "day"
    if unit == "quarter":
        amount, unit = amount * 3, "month"
    if amount == 0:
        return expr
    if dialect == "postgres":
        return f"CAST({expr} + INTERVAL '{amount} {unit}' AS DATE)"
    if dialect == "mysql":
        return f"DATE_ADD({expr}, INTERVAL {amount} {unit.upper()})"
    sign = "+" if amount > 0 else "-"
    return f"date({expr}, '{sign}{abs(amount)} {unit}s')"


def shift_by_param(expr: str, name: str, unit: str, dialect: str, *, sign: int = -1) -> str:
    """A date `:name` units before (sign -1) or after `expr`; the parameter is an integer."""
    if unit == "week":
        factor, unit = 7, "day"
    elif unit == "quarter":
        factor, unit = 3, "month"
    else:
        factor = 1
    amount = f"CAST(:{name} AS INTEGER)" if factor == 1 else f"(CAST(:{name} AS INTEGER) * {factor})"
    if dialect == "postgres":
        op = "-" if sign < 0 else "+"
        return f"CAST({expr} {op} make_interval({unit}s => {amount}) AS DATE)"
    if dialect == "mysql":
        amount = f":{name}" if factor == 1 else f"(:{name} * {factor})"
        fn = "DATE_SUB" if sign < 0 else "DATE_ADD"
        return f"{fn}({expr}, INTERVAL {amount} {unit.upper()})"
    amount = f":{name}" if factor == 1 else f"(:{name} * {factor})"
    op = "-" if sign < 0 else "+"
    return f"date({expr}, '{op}' || {amount} || ' {unit}s')"


def unit_start(expr: str, unit: str, dialect: str) -> str:
    """The first day of the calendar unit (week from Monday) that the date `expr` falls in."""
    if dialect == "postgres":
        return f"CAST(date_trunc('{unit}', {expr}) AS DATE)"
    if dialect == "mysql":
        return {
            "day": f"DATE({expr})",
            "week": f"DATE_SUB(DATE({expr}), INTERVAL WEEKDAY({expr}) DAY)",
            "month": f"DATE_SUB(DATE({expr}), INTERVAL DAYOFMONTH({expr}) - 1 DAY)",
            "quarter": f"MAKEDATE(YEAR({expr}), 1) + INTERVAL (QUARTER({expr}) - 1) QUARTER",
            "year": f"MAKEDATE(YEAR({expr}), 1)",
        }[unit]
    return {
        "day": f"date({expr})",
        "week": f"date({expr}, '-6 days', 'weekday 1')",
        "month": f"date({expr}, 'start of month')",
        "quarter": (
            f"date({expr}, 'start of month', '-' || ((CAST(strftime('%m', {expr}) AS INTEGER) - 1) % 3) || ' months')"
        ),
        "year": f"date({expr}, 'start of year')",
    }[unit]


def calendar_start(unit: str, offset: int, dialect: str) -> str:
    """The first day of the current calendar unit moved by `offset` units (0: this month, -1: last month)."""
    return shift(unit_start(today(dialect), unit, dialect), offset, unit, dialect)


def year_start_param(name: str, dialect: str, *, plus: int = 0) -> str:
    """1 January of the year held by the integer parameter `name` (plus `plus` years)."""
    year = f"CAST(:{name} AS INTEGER)" + (f" + {plus}" if plus else "")
    if dialect == "postgres":
        return f"make_date({year}, 1, 1)"
    if dialect == "mysql":
        return f"MAKEDATE({year}, 1)"
    return f"printf('%04d-01-01', {year})"


def month_start_param(name: str, dialect: str, *, plus: int = 0) -> str:
    """The first day of the month held by the parameter `name` as YYYY-MM (plus `plus` months)."""
    if dialect == "postgres":
        start = f"CAST(:{name} || '-01' AS DATE)"
    elif dialect == "mysql":
        start = f"CAST(CONCAT(:{name}, '-01') AS DATE)"
    else:
        start = f"date(:{name} || '-01')"
    return shift(start, plus, "month", dialect) if plus else start


def bucket(expr: str, unit: str, dialect: str) -> str:
    """A text label of the period a date falls in: YYYY-MM-DD (day; week start), YYYY-MM, YYYY-Qn, YYYY."""
    if dialect == "postgres":
        return {
            "day": f"to_char({expr}, 'YYYY-MM-DD')",
            "week": f"to_char(date_trunc('week', {expr}), 'YYYY-MM-DD')",
            "month": f"to_char({expr}, 'YYYY-MM')",
            "quarter": f"to_char({expr}, 'YYYY-\"Q\"Q')",
            "year": f"to_char({expr}, 'YYYY')",
        }[unit]
    if dialect == "mysql":
        return {
            "day": f"DATE_FORMAT({expr}, '%Y-%m-%d')",
            "week": f"DATE_FORMAT(DATE_SUB({expr}, INTERVAL WEEKDAY({expr}) DAY), '%Y-%m-%d')",
            "month": f"DATE_FORMAT({expr}, '%Y-%m')",
            "quarter": f"CONCAT(YEAR({expr}), '-Q', QUARTER({expr}))",
            "year": f"DATE_FORMAT({expr}, '%Y')",
        }[unit]
    return {
        "day": f"strftime('%Y-%m-%d', {expr})",
        "week": f"date({expr}, '-6 days', 'weekday 1')",
        "month": f"strftime('%Y-%m', {expr})",
        "quarter": f"strftime('%Y', {expr}) || '-Q' || ((CAST(strftime('%m', {expr}) AS INTEGER) + 2) / 3)",
        "year": f"strftime('%Y', {expr})",
    }[unit]


def bucket_bounds(label: str, unit: str) -> tuple[date, date] | None:
    """The [start, end) dates of a bucket label as `bucket` writes it; None if it is not one."""
    try:
        if unit == "year" and re.fullmatch(r"\d{4}", label):
            y = int(label)
            return date(y, 1, 1), date(y + 1, 1, 1)
        if unit == "quarter":
            m = re.fullmatch(r"(\d{4})-Q([1-4])", label)
            if not m:
                return None
            y, q = int(m.group(1)), int(m.group(2))
            start = date(y, 3 * (q - 1) + 1, 1)
            end = date(y + 1, 1, 1) if q == 4 else date(y, 3 * q + 1, 1)
            return start, end
        if unit == "month" and re.fullmatch(r"\d{4}-\d{2}", label):
            y, m = int(label[:4]), int(label[5:])
            return date(y, m, 1), (date(y + 1, 1, 1) if m == 12 else date(y, m + 1, 1))
        if unit in ("day", "week") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", label[:10]):
            from datetime import timedelta

            start = date.fromisoformat(label[:10])
            return start, start + timedelta(days=1 if unit == "day" else 7)
    except ValueError:
        return None
    return None


def ilike(expr: str, pattern: str, dialect: str) -> str:
    """Case-insensitive LIKE."""
    if dialect == "postgres":
        return f"{expr} ILIKE {pattern}"
    return f"LOWER({expr}) LIKE LOWER({pattern})"


def concat(parts: list[str], dialect: str) -> str:
    if dialect == "mysql":
        return f"CONCAT({', '.join(parts)})"
    return " || ".join(parts)


def contains(expr: str, needle: str, dialect: str) -> str:
    """Case-insensitive substring match of a text expression."""
    return ilike(expr, concat(["'%'", needle, "'%'"], dialect), dialect)


SECONDS_PER: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def duration_sql(start: str, end: str, unit: str, dialect: str, *, dates: bool = False) -> str:
    """The time from `start` to `end` (SQL expressions of dates or timestamps) in `unit`, as a number.

    `dates`: both are calendar dates, which PostgreSQL subtracts into a number of days, not an interval.
    """
    seconds = SECONDS_PER[unit]
    if dialect == "sqlite":
        return f"((julianday({end}) - julianday({start})) * {86400 / seconds:g})"
    if dialect == "mysql":
        return f"(TIMESTAMPDIFF(SECOND, {start}, {end}) / {seconds})"
    if dates:
        return f"(({end} - {start}) * {86400 / seconds:g})"
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / {seconds})"
