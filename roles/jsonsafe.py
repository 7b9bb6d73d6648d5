"""Turn database values into JSON-safe values.

Decimals become strings (exact; columns say json_type "string", format "decimal"), datetimes,
dates and times ISO 8601 (zones kept), intervals ISO 8601 durations, UUIDs strings, bytes base64,
arrays lists and JSON columns objects.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import ipaddress
import json
import uuid
from typing import Any


def duration_iso(value: dt.timedelta) -> str:
    """timedelta -> ISO 8601 duration such as P1DT2H3M4.5S (negative durations get a leading minus)."""
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    out = f"{sign}P"
    if days:
        out += f"{int(days)}D"
    time_part = ""
    if hours:
        time_part += f"{int(hours)}H"
    if minutes:
        time_part += f"{int(minutes)}M"
    if seconds or not (days or hours or minutes):
        sec = f"{seconds:.6f}".rstrip("0").rstrip(".")
        time_part += f"{sec}S"
    if time_part:
        out += "T" + time_part
    return out


def json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return duration_iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if hasattr(value, "lower") and hasattr(value, "upper") and hasattr(value, "bounds"):  # psycopg Range
        return {"lower": json_safe(value.lower), "upper": json_safe(value.upper), "bounds": value.bounds}
    return str(value)


def time_of_day(value: dt.timedelta) -> str:
    """MySQL drivers return TIME values as timedelta; show them as HH:MM:SS[.ffffff]."""
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rem = divmod(int(total), 3600)
    minutes, seconds = divmod(rem, 60)
    micro = round((total - int(total)) * 1_000_000)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{micro:06d}" if micro else text


# Values that are JSON as they are (exact types: a bool or int subclass such as an enum goes through json_safe).
_PLAIN = frozenset({str, int, bool, type(None)})


def json_safe_record(columns, values) -> dict:
    """One row of values (a driver's tuple) as a JSON-safe dict by column name, built in one pass."""
    pairs = zip(columns, values, strict=False)
    return {key: value if type(value) in _PLAIN else json_safe(value) for key, value in pairs}


def json_safe_row(
    row: dict, json_columns: frozenset[str] = frozenset(), time_columns: frozenset[str] = frozenset()
) -> dict:
    """Convert one row; JSON returned as text (MySQL, SQLite) is parsed, TIME as timedelta shown as a time."""
    if not json_columns and not time_columns:
        return json_safe_record(row.keys(), row.values())
    out = {}
    for key, value in row.items():
        if key in json_columns and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if key in time_columns and isinstance(value, dt.timedelta):
            value = time_of_day(value)
        out[key] = json_safe(value)
    return out
