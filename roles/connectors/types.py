"""Map database types to JSON types and formats.

Decimals are exchanged as strings (json_type "string", format "decimal") so that no precision
is lost; floats are JSON numbers.
"""

from __future__ import annotations

import re

import sqlalchemy as sa


def json_type_for_sa_type(type_: sa.types.TypeEngine) -> tuple[str, str | None]:
    if isinstance(type_, sa.ARRAY):
        return "array", None
    if isinstance(type_, sa.JSON):
        return "object", None
    if isinstance(type_, sa.Boolean):
        return "boolean", None
    if getattr(type_, "display_width", None) == 1 and type(type_).__name__ == "TINYINT":
        return "boolean", None  # MySQL/MariaDB spell BOOLEAN as TINYINT(1)
    if isinstance(type_, sa.Integer):
        return "integer", None
    if isinstance(type_, sa.Float):
        return "number", None
    if isinstance(type_, sa.Numeric):
        return "string", "decimal"
    if isinstance(type_, sa.DateTime):
        return "string", "date-time"
    if isinstance(type_, sa.Date):
        return "string", "date"
    if isinstance(type_, sa.Time):
        return "string", "time"
    if isinstance(type_, sa.Uuid):
        return "string", "uuid"
    if isinstance(type_, sa.LargeBinary | sa.types._Binary):
        return "string", "binary"
    try:
        text = str(type_.compile())
    except Exception:
        text = type(type_).__name__
    return json_type_for_type_text(text)


_RULES: list[tuple[str, tuple[str, str | None]]] = [
    (r"\[\]$|^_|^array", ("array", None)),
    (r"^jsonb?$", ("object", None)),
    (r"^(bool|boolean|tinyint\(1\))$", ("boolean", None)),
    (
        r"^(tiny|small|medium|big)?int(eger)?\d*( unsigned)?(\(\d+\))?( unsigned)?$|^(small|big)?serial\d?$",
        ("integer", None),
    ),
    (r"^(int2|int4|int8|oid|year)", ("integer", None)),
    (r"^(real|float|double)", ("number", None)),
    (r"^(numeric|decimal|money|dec\b|fixed)", ("string", "decimal")),
    (r"^timestamp|^datetime", ("string", "date-time")),
    (r"^date$", ("string", "date")),
    (r"^time", ("string", "time")),
    (r"^uuid$", ("string", "uuid")),
    (r"^(bytea|blob|tinyblob|mediumblob|longblob|binary|varbinary)", ("string", "binary")),
]


def json_type_for_type_text(text: str) -> tuple[str, str | None]:
    """Guess the JSON type of a database type written as text (used for routine arguments)."""
    t = (text or "").strip().lower()
    for pattern, result in _RULES:
        if re.search(pattern, t):
            return result
    return "string", None
