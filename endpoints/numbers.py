"""Numbers of generated endpoints are JSON numbers: decimals are sent as numbers, their scale kept in the schema.

The executor hands decimals over as exact strings (no precision lost on the way); an endpoint whose row
schema says a column is a number (or a decimal) answers with numbers, and the published schema says
"type": "number" with the decimal places seen in its tests as "x-scale".
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation

NUMERIC_TYPES = ("number", "integer")


def numeric_columns(response_schema: dict | None) -> dict[str, str]:
    """Column name -> "number" or "integer" for the columns a row schema declares numeric (decimals included)."""
    out = {}
    for name, spec in ((response_schema or {}).get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        kind = spec.get("type")
        if kind in NUMERIC_TYPES:
            out[name] = kind
        elif spec.get("format") == "decimal":
            out[name] = "number"
    return out


def _as_number(value, kind: str):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return value
        if not number.is_finite():
            return value
    else:
        return value
    if kind == "integer" and isinstance(number, Decimal) and number == number.to_integral_value():
        return int(number)
    return number


def rows_with_numbers(rows: list[dict], columns: dict[str, str]) -> list[dict]:
    """Rows whose numeric columns hold numbers (Decimal for exact decimals, rendered as JSON numbers)."""
    if not columns:
        return rows
    return [
        {key: (_as_number(value, columns[key]) if key in columns else value) for key, value in row.items()}
        for row in rows
    ]


def decimal_scales(rows: list[dict]) -> dict[str, int]:
    """The most decimal places seen per column among Decimal values."""
    scales: dict[str, int] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, Decimal) and value.is_finite():
                exponent = value.as_tuple().exponent
                places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
                scales[key] = max(scales.get(key, 0), places)
    return scales


def schema_with_scales(response_schema: dict | None, scales: dict[str, int]) -> dict:
    """The row schema with "x-scale" set on the decimal columns whose scale was observed."""
    schema = copy.deepcopy(response_schema or {})
    for name, places in scales.items():
        spec = (schema.get("properties") or {}).get(name)
        if isinstance(spec, dict) and spec.get("x-scale") != places:
            spec["x-scale"] = places
    return schema


def public_row_schema(response_schema: dict | None) -> dict:
    """The row schema as published: decimal columns are numbers ("format": "decimal", their "x-scale")."""
    schema = copy.deepcopy(response_schema or {"type": "object"})
    for spec in (schema.get("properties") or {}).values():
        if isinstance(spec, dict) and spec.get("format") == "decimal":
            spec["type"] = "number"
        if isinstance(spec, dict) and "x-scale" in spec:
            spec.setdefault("format", "decimal")
            spec.setdefault(
                "description",
                f"A decimal number with {spec['x-scale']} decimal place{'s' if spec['x-scale'] != 1 else ''}.",
            )
    return schema
