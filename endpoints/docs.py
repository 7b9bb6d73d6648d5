"""Markdown documentation of a generated endpoint, with curl and Python examples against its live URL."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings

from endpoints.models import GeneratedEndpoint
from endpoints.numbers import public_row_schema
from endpoints.runtime import page_size_default


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _type_text(spec: dict) -> str:
    kind = spec.get("type", "string")
    if kind == "array":
        return f"array of {_type_text(spec.get('items') or {})}"
    if "x-scale" in spec:
        places = spec["x-scale"]
        return f"{kind} (decimal, {places} place{'s' if places != 1 else ''})"
    return f"{kind} ({spec['format']})" if spec.get("format") else kind


def _constraints(spec: dict) -> str:
    parts = []
    if spec.get("enum"):
        parts.append("one of " + ", ".join(f"`{v}`" for v in spec["enum"]))
    if "minimum" in spec:
        parts.append(f"≥ {spec['minimum']}")
    if "maximum" in spec:
        parts.append(f"≤ {spec['maximum']}")
    if "minLength" in spec:
        parts.append(f"at least {spec['minLength']} chars")
    if "maxLength" in spec:
        parts.append(f"at most {spec['maxLength']} chars")
    if "pattern" in spec:
        parts.append(f"matches `{spec['pattern']}`")
    return "; ".join(parts)


def example_params(endpoint: GeneratedEndpoint) -> dict:
    """Values for the examples: a passing test case's parameters, else defaults and enum choices."""
    for case in endpoint.tests or []:
        if (case.get("expect") or {}).get("status", 200) == 200 and isinstance(case.get("params"), dict):
            return {k: v for k, v in case["params"].items() if k not in ("limit", "offset", "page")}
    out = {}
    for name, spec in (endpoint.parameters or {}).get("properties", {}).items():
        if spec.get("default") is not None:
            out[name] = spec["default"]
        elif spec.get("enum"):
            out[name] = spec["enum"][0]
    return out


def live_url(endpoint: GeneratedEndpoint, *, versioned: bool = False) -> str:
    return settings.PUBLIC_BASE_URL + (endpoint.versioned_path if versioned else endpoint.path)


def markdown_docs(endpoint: GeneratedEndpoint) -> str:
    properties = (endpoint.parameters or {}).get("properties", {})
    required = set((endpoint.parameters or {}).get("required", []))
    url, versioned = live_url(endpoint), live_url(endpoint, versioned=True)
    params = example_params(endpoint)
    lines = [
        f"# {endpoint.method} {endpoint.slug} (v{endpoint.version})",
        "",
        endpoint.description or "_No description._",
        "",
        f"- **URL**: `{url}` (current version); this version stays at `{versioned}` until retired",
        f"- **Method**: `{endpoint.method}`",
        f"- **Status**: {endpoint.get_status_display()}",
        "- **Authentication**: `Authorization: Bearer <API key of the role>`",
    ]
    if endpoint.is_read_only:
        lines.append(
            f"- **Paging**: pages of {page_size_default()} rows by default (`limit`, 1-{settings.QUERY_ROW_CAP}); "
            "follow `next` (or `offset`) to read every row, however many there are"
        )
    meaning = (endpoint.verification or {}).get("meaning")
    if meaning:
        verdict = {"verified": "verified against the request", "needs_review": "checked; needs a person's review"}
        lines.append(f"- **What it returns**: {meaning} ({verdict.get(endpoint.verdict, endpoint.verdict)})")
    lines += ["", "## Parameters", ""]
    if properties:
        where = "query string" if endpoint.is_read_only else "JSON body"
        lines += [f"Sent in the {where}.", "", "| Name | Type | Required | Default | Constraints | Description |"]
        lines.append("|---|---|---|---|---|---|")
        for name, spec in properties.items():
            default = "" if spec.get("default") is None else f"`{spec['default']}`"
            lines.append(
                f"| `{name}` | {_type_text(spec)} | {'yes' if name in required else 'no'} | {default} | "
                f"{_cell(_constraints(spec))} | {_cell(spec.get('description', ''))} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## Response", ""]
    fields = public_row_schema(endpoint.response_schema).get("properties", {})
    if endpoint.is_read_only:
        lines.append(
            "A page of rows: `{count, total, limit, offset, next, next_offset, previous, truncated, columns, "
            "results: [row, ...]}`."
        )
    else:
        lines.append("`{row_count, rows}`: the number of rows written and, where the database returns them, the rows.")
    if fields:
        lines += ["", "Fields of a row:", "", "| Field | Type | Description |", "|---|---|---|"]
        for name, spec in fields.items():
            lines.append(f"| `{name}` | {_type_text(spec)} | {_cell(spec.get('description', ''))} |")
    lines += [
        "",
        "Errors: `400` bad parameters (each with `field`, `message`, `code`), `401` missing or invalid key, "
        "`403` key of another role, `404` unknown endpoint, `410` retired version, `429` rate limit.",
        "",
        "## Examples",
        "",
        "```bash",
    ]
    if endpoint.is_read_only:
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        lines.append(f'curl -H "Authorization: Bearer $NECTAR_API_KEY" "{url}{query}"')
    else:
        lines.append(
            f'curl -X {endpoint.method} -H "Authorization: Bearer $NECTAR_API_KEY" '
            f"-H 'Content-Type: application/json' -d '{json.dumps(params)}' \"{url}\""
        )
    lines += ["```", "", "```python", "import os", "", "import httpx", ""]
    headers = '{"Authorization": f"Bearer {os.environ[\'NECTAR_API_KEY\']}"}'
    if endpoint.is_read_only:
        lines.append(f"response = httpx.get({url!r}, params={params!r}, headers={headers})")
    else:
        lines.append(f"response = httpx.request({endpoint.method!r}, {url!r}, json={params!r}, headers={headers})")
    lines += ["response.raise_for_status()", "print(response.json())", "```", ""]
    if endpoint.docs:
        lines += ["## Notes", "", endpoint.docs.strip(), ""]
    return "\n".join(lines)
