"""Readable admin displays of JSON fields and measurements: tables instead of raw JSON, rounded numbers with units."""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Styles of these tables: static/web/admin.css (add it to an admin's Media).
ADMIN_CSS = "web/admin.css"

EMPTY = "—"


def milliseconds(value) -> str:
    """7.575291274750267 -> "7.6 ms"; 1834.2 -> "1.83 s"; None -> "—"."""
    if value in (None, ""):
        return EMPTY
    value = float(value)
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def number(value, digits: int = 2) -> str:
    """A float rounded for reading (ints unchanged, thousands separated)."""
    if value in (None, ""):
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value):,}"
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def measure(key: str, value) -> SafeString | str:
    """A value shown with the unit its key names: *_ms in ms, *_seconds in s, *_usd in dollars."""
    key = str(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key.endswith("_ms") or key == "duration_ms":
            return milliseconds(value)
        if key.endswith("_seconds") or key == "seconds":
            return milliseconds(value * 1000)
        if key.endswith("_usd"):
            return f"${value:,.4f}"
    if isinstance(value, dict) and key.endswith("_seconds"):
        return key_value_table(
            {k: milliseconds(v * 1000) if isinstance(v, int | float) else v for k, v in value.items()}
        )
    return _cell(value)


def _cell(value) -> SafeString | str:
    if value in (None, "", [], {}):
        return EMPTY
    if isinstance(value, dict):
        return key_value_table(value)
    if isinstance(value, list):
        if all(isinstance(v, str | int | float) for v in value):
            return ", ".join(str(v) for v in value)
        return format_html('<pre class="nectar-json">{}</pre>', json.dumps(value, indent=2, default=str)[:4000])
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    return str(value)


def key_value_table(mapping: dict | None, *, labels: dict | None = None) -> SafeString | str:
    """A dict as a two-column table; nested values become nested tables or lists."""
    if not mapping:
        return EMPTY
    labels = labels or {}
    rows = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td></tr>",
        ((labels.get(k, str(k).replace("_", " ")), measure(k, v)) for k, v in mapping.items()),
    )
    return format_html('<table class="nectar-kv">{}</table>', rows)


def rows_table(rows: Iterable[dict], columns: list[tuple[str, str]], *, formatters: dict | None = None) -> SafeString:
    """A list of dicts as a table with the given (key, heading) columns; formatters map a key to a function."""
    formatters = formatters or {}
    head = format_html_join("", "<th>{}</th>", ((heading,) for _, heading in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((formatters.get(key, _cell)(row.get(key)),) for key, _ in columns)),)
            for row in rows
        ),
    )
    return format_html('<table class="nectar-rows"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def schema_properties_table(schema: dict | None) -> SafeString | str:
    """A JSON schema object's properties as Name / Type / Required / Constraints / Description rows."""
    properties = (schema or {}).get("properties") or {}
    if not properties:
        return EMPTY
    required = set((schema or {}).get("required") or [])
    rows = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "")
        if spec.get("format"):
            kind = f"{kind} ({spec['format']})"
        constraints = ", ".join(
            f"{key} {json.dumps(spec[key], default=str)}"
            for key in ("enum", "minimum", "maximum", "minLength", "maxLength", "default", "x-scale")
            if key in spec
        )
        rows.append(
            {
                "name": mark_safe(format_html("<code>{}</code>", name)),  # noqa: S308 - built by format_html
                "type": kind or EMPTY,
                "required": "yes" if name in required else "no",
                "constraints": constraints or EMPTY,
                "description": spec.get("description", ""),
            }
        )
    return rows_table(
        rows,
        [
            ("name", "Name"),
            ("type", "Type"),
            ("required", "Required"),
            ("constraints", "Constraints"),
            ("description", "Description"),
        ],
        formatters={"name": lambda v: v},
    )


def test_results_table(results) -> SafeString | str:
    """Test cases of a generated endpoint as rows: result, name, HTTP status, rows, detail."""
    cases = results.get("cases") if isinstance(results, dict) else None
    if not cases:
        return _cell(results)
    summary = format_html(
        "<p>{} of {} passed{}</p>",
        sum(1 for c in cases if c.get("passed")),
        len(cases),
        format_html(" · run {}", str(results.get("ran_at", ""))[:19].replace("T", " "))
        if results.get("ran_at")
        else "",
    )
    table = rows_table(
        [
            {
                "passed": "✓ passed" if c.get("passed") else "✗ failed",
                "name": c.get("name", ""),
                "status": c.get("status"),
                "rows": c.get("rows"),
                "message": "" if c.get("message") == "ok" else c.get("message", ""),
            }
            for c in cases
        ],
        [("passed", "Result"), ("name", "Test"), ("status", "HTTP"), ("rows", "Rows"), ("message", "Detail")],
    )
    return format_html("{}{}", summary, table)
