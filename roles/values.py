"""Check a value against an introspected column's JSON type and turn it into what to bind."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import uuid
from typing import Any

from roles.results import ExecutorError


def value_type_error(col: dict, field: str, expected: str, value) -> ExecutorError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ExecutorError(
        "invalid_argument",
        f"{field}: column {col['name']!r} ({col.get('type')}) expects {expected}, got {shown}.",
        field=field,
    )


def coerce_value(col: dict, value, field: str, engine: str) -> Any:
    """Check a value against a column's JSON type and return what to bind; raise invalid_argument."""
    if value is None:
        return None
    json_type, fmt = col.get("json_type"), col.get("format")
    if json_type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise value_type_error(col, field, "an integer", value)
        if abs(value) >= 2**63:
            raise value_type_error(col, field, "an integer within 64 bits", value)
        return value
    if json_type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise value_type_error(col, field, "a number", value)
        return value
    if json_type == "boolean":
        if not isinstance(value, bool):
            raise value_type_error(col, field, "true or false", value)
        return value
    if json_type == "object":
        if not isinstance(value, dict | list):
            raise value_type_error(col, field, "a JSON object or array", value)
        return json.dumps(value)
    if json_type == "array":
        if not isinstance(value, list):
            raise value_type_error(col, field, "an array", value)
        return value
    # strings, possibly with a format
    if fmt == "decimal":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise value_type_error(col, field, "a decimal number (string or number)", value)
        try:
            number = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            raise value_type_error(col, field, "a decimal number", value) from None
        if not number.is_finite():
            raise value_type_error(col, field, "a finite decimal number", value)
        return str(number)
    if not isinstance(value, str):
        raise value_type_error(col, field, "a string" + (f" ({fmt})" if fmt else ""), value)
    if "\x00" in value:
        raise value_type_error(col, field, "a string without NUL characters", value)
    try:
        if fmt == "date-time":
            parsed = dt.datetime.fromisoformat(value)
            if engine == "mysql":
                if parsed.tzinfo is not None:
                    parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
                return parsed.isoformat(sep=" ")
            return parsed.isoformat(sep=" ")
        if fmt == "date":
            return dt.date.fromisoformat(value).isoformat()
        if fmt == "time":
            return dt.time.fromisoformat(value).isoformat()
        if fmt == "uuid":
            return str(uuid.UUID(value))
        if fmt == "binary":
            return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        expected = {
            "date-time": "an ISO 8601 date-time",
            "date": "an ISO 8601 date (YYYY-MM-DD)",
            "time": "an ISO 8601 time (HH:MM[:SS])",
            "uuid": "a UUID",
            "binary": "base64-encoded bytes",
        }[fmt]
        raise value_type_error(col, field, expected, value) from None
    if col.get("enum") and value not in col["enum"]:
        raise value_type_error(col, field, f"one of {', '.join(col['enum'])}", value)
    return value
