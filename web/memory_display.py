"""How a memory reads on the memory browser: prose, its SQL as code, its machine-readable part as fields."""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"```json\s*\n(.*?)\n```", re.S)
_SQL_START = re.compile(r"^\s*(--|select\b|with\b)", re.I)
_SQL_LINE = re.compile(r"^(Attempted SQL|SQL):\s*(.+)$", re.I | re.S)


def memory_view(*, memory) -> dict:
    """{"prose", "sql", "fields", "avoid", "rejected"} for a memory's content."""
    content = memory.content or ""
    data = None
    match = _FENCE.search(content)
    if match:
        try:
            data = json.loads(match.group(1))
        except ValueError:
            data = None
        else:
            content = (content[: match.start()] + content[match.end() :]).strip()
    sql = ""
    prose_lines = []
    if memory.type == "CODE_SNIPPET" or _SQL_START.match(content):
        sql, content = content.strip(), ""
    for line in content.splitlines():
        found = _SQL_LINE.match(line.strip())
        if found and not sql:
            sql = found.group(2).strip()
        else:
            prose_lines.append(line)
    fields = []
    avoid = {}
    if isinstance(data, dict):
        avoid = data.get("avoid") if isinstance(data.get("avoid"), dict) else {}
        for key, value in data.items():
            if key == "avoid":
                continue
            if key == "sql" and isinstance(value, str):
                sql = sql or value
                continue
            fields.append({"name": key.replace("_", " "), **_field_value(value)})
    is_anti = memory.type == "ANTI_PATTERN"
    text = "\n".join(prose_lines).strip()
    return {
        "prose": text,
        "sql": sql,
        "fields": fields,
        "avoid": [{"name": k.replace("_", " "), **_field_value(v)} for k, v in avoid.items() if v],
        "anti": is_anti,
        "rejected": is_anti and "reject" in (memory.content or "").lower(),
    }


def _field_value(value) -> dict:
    """A value as text, a list of chips, or a short JSON block."""
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return {"chips": [str(v) for v in value]}
    if isinstance(value, dict):
        properties = value.get("properties") if isinstance(value.get("properties"), dict) else None
        if properties is not None:  # a JSON schema: its parameter names
            return {"chips": list(properties)}
        if all(isinstance(v, str | int | float | bool) for v in value.values()):
            return {"text": ", ".join(f"{k}: {v}" for k, v in value.items())}
        return {"json": json.dumps(value, indent=2, ensure_ascii=False, default=str)}
    if isinstance(value, bool):
        return {"text": "yes" if value else "no"}
    return {"text": "" if value is None else str(value)}
