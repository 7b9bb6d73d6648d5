"""Work started from the business pages that no other app already offers."""

from __future__ import annotations

import logging
import time

from endpoints.models import EndpointStatus, GeneratedEndpoint
from endpoints.runtime import EndpointResult, endpoint_run, error_body, redact
from mcpservers.models import CallOutcome, ToolCall
from web.models import UserPreference

logger = logging.getLogger(__name__)


class TryItError(Exception):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def endpoint_try(*, endpoint: GeneratedEndpoint, values: dict) -> EndpointResult:
    """Run an endpoint for a signed-in member through the live runtime path, with the endpoint's Role.

    No API key leaves the server: the caller's access was checked by the view. Empty fields are
    left out (so defaults apply). The call is written to the audit log like a live call.
    """

    if endpoint.status == EndpointStatus.RETIRED:
        raise TryItError("This version is retired; try the current one.", field="endpoint")
    if not endpoint.is_read_only:
        raise TryItError("Only read endpoints can be tried from the browser; writes need an API key.", field="endpoint")
    cleaned = {str(k): v for k, v in values.items() if v not in (None, "", [])}
    started = time.perf_counter()
    try:
        result = endpoint_run(endpoint=endpoint, values=cleaned, from_text=True)
    except Exception:
        logger.exception("try-it call of endpoint %s failed", endpoint.pk)
        result = EndpointResult(
            500, error_body(500, "Internal error; it has been logged.", code="internal_error"), error="internal"
        )
    duration_ms = (time.perf_counter() - started) * 1000.0
    ToolCall.objects.create(
        organization_id=endpoint.organization_id,
        instance=None,
        api_key=None,
        tool=endpoint.tool_name[:200],
        arguments=redact(cleaned),
        outcome=CallOutcome.OK if result.status < 400 else CallOutcome.ERROR,
        error=result.error[:2000],
        rows=result.rows,
        duration_ms=duration_ms,
    )
    endpoint.record_call(duration_ms)
    return result


def preference_remember_role(*, user, role) -> None:
    """Remember the Role this user just chose, for their next requirement."""

    UserPreference.objects.update_or_create(user=user, defaults={"last_role": role})


def result_csv(body: dict) -> str:
    """Rows of a read result as CSV: a header of the columns, exact decimals, nested values as JSON."""
    import csv
    import io
    import json

    out = io.StringIO()
    writer = csv.writer(out)
    columns = list(body.get("columns") or [])
    writer.writerow(columns)
    for row in body.get("results") or []:
        cells = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, dict | list):
                value = json.dumps(value, ensure_ascii=False, default=str)
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return out.getvalue()
