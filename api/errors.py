"""One error body for every 4xx of the API: {"errors": [{"field", "message", "code"}]}.

DRF's own exceptions (validation, 401, 403, 404, 405, 415, 429), Django's Http404 and
PermissionDenied, and the services' error types all end up in that shape. Live generated
endpoints (/api/v1/x/...) keep their documented {"error": {...}} body.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from agents.services import ExecutionError
from endpoints.runtime import error_body as endpoint_error_body
from endpoints.services import EndpointError
from learning.services import LearningInputError
from roles.connectors.base import ConnectorError
from roles.executor import ExecutorError

logger = logging.getLogger(__name__)

# A customer database that cannot be reached, refuses the credentials, lacks its driver or fails:
# Nectar itself worked, the database the caller configured did not. 424 Failed Dependency says
# exactly that (a 5xx would blame Nectar); the code names the reason.
CUSTOMER_DATABASE_FAILED = 424
EXECUTOR_STATUS = {
    "forbidden": 403,
    "unknown_object": 400,
    "unknown_column": 400,
    "invalid_argument": 400,
    "invalid_sql": 400,
    "constraint_violation": 409,
    "timeout": CUSTOMER_DATABASE_FAILED,
    "database_unavailable": CUSTOMER_DATABASE_FAILED,
    "database_busy": CUSTOMER_DATABASE_FAILED,
    "database_error": CUSTOMER_DATABASE_FAILED,
}
# Service error codes that mean "not in this state" rather than "bad input".
CONFLICT_CODES = {
    "invalid_state",
    "not_approved",
    "not_deployed",
    "no_previous_version",
    "inactive",
    "mcp_disabled",
    "in_use",
}


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="The input at fault (dotted path), or null")
    message = serializers.CharField()
    code = serializers.CharField(help_text="Machine-readable reason, e.g. required, not_found, throttled")


class ErrorBodySerializer(serializers.Serializer):
    """The body of every 4xx answer of /api/v1/."""

    errors = ErrorItemSerializer(many=True)


def error(message: str, *, code: str, field: str | None = None) -> dict:
    return {"field": field, "message": str(message), "code": code}


def error_body(*items: dict) -> dict:
    return {"errors": list(items)}


class ApiError(exceptions.APIException):
    """Raise from a view with an explicit status, code and field."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None, status_code: int = 400):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.field = field
        self.error_code = code


def _flatten(detail: Any, path: str | None) -> list[dict]:
    """Turn DRF's nested validation detail into a flat list, with dotted field paths."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            key = str(key)
            if key in ("non_field_errors", "__all__"):
                items += _flatten(value, path)
            else:
                items += _flatten(value, f"{path}.{key}" if path else key)
        return items
    if isinstance(detail, list):
        items = []
        nested = any(isinstance(v, dict | list) for v in detail)
        for index, value in enumerate(detail):
            if nested and isinstance(value, dict | list):
                items += _flatten(value, f"{path}.{index}" if path else str(index))
            else:
                items += _flatten(value, path)
        return items
    code = getattr(detail, "code", None) or "invalid"
    return [error(str(detail), code=code, field=path)]


def _to_api_exception(exc: Exception) -> tuple[int, list[dict]] | None:
    """Map the services' own error types to (status, errors); None for anything else."""

    if isinstance(exc, ExecutionError | EndpointError):
        code = exc.code or "invalid"
        if code == "not_found":
            return 404, [error(exc.message, code=code, field=exc.field)]
        if code == "forbidden":
            return 403, [error(exc.message, code=code, field=exc.field)]
        if code == "spending_cap":
            return 429, [error(exc.message, code=code, field=exc.field)]
        return (409 if code in CONFLICT_CODES else 400), [error(exc.message, code=code, field=exc.field)]
    if isinstance(exc, LearningInputError):
        message = str(exc)
        prefix = f"{exc.field}: "
        if message.startswith(prefix):
            message = message[len(prefix) :]
        return 400, [error(message, code="invalid", field=exc.field)]
    if isinstance(exc, ExecutorError):
        return EXECUTOR_STATUS.get(exc.code, 400), [error(exc.message, code=exc.code, field=exc.field)]
    if isinstance(exc, ConnectorError):
        return CUSTOMER_DATABASE_FAILED, [error(exc.message, code=exc.reason or "database_error")]
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    view = context.get("view")
    if view is not None and type(view).__module__.startswith("endpoints."):
        return _generated_endpoint_error(exc, context)

    mapped = _to_api_exception(exc)
    if mapped is not None:
        status_code, items = mapped
        return Response(error_body(*items), status=status_code)
    if isinstance(exc, Http404):
        return Response(error_body(error(_http404_text(exc), code="not_found")), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        text = str(exc) or "You do not have permission to perform this action."
        return Response(error_body(error(text, code="permission_denied")), status=403)
    if not isinstance(exc, exceptions.APIException):
        return None  # a genuine server error: Django logs it and answers 500

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, ApiError):
        items = [error(str(exc.detail), code=exc.error_code, field=exc.field)]
    elif isinstance(exc, exceptions.ValidationError):
        items = _flatten(exc.detail, None) or [error("Invalid input.", code="invalid")]
    else:
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        items = [error(str(detail), code=code)]
    # Authentication problems answer 401 when a scheme can be announced (DRF's rule), else 403.
    response_status = exc.status_code
    request = context.get("request")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and request is not None:
        auth_header = view.get_authenticate_header(request) if view is not None else None
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
            response_status = status.HTTP_401_UNAUTHORIZED
        else:
            response_status = status.HTTP_403_FORBIDDEN
    return Response(error_body(*items), status=response_status, headers=headers)


def _http404_text(exc: Http404) -> str:
    text = str(exc) or "Not found."
    return text if text.endswith(".") else f"{text}."


def _generated_endpoint_error(exc: Exception, context: dict) -> Response | None:
    """The live generated endpoints' own error body ({"error": {...}}), as their schema documents."""

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    message = str(detail) if detail is not None and not isinstance(detail, dict | list) else "Request refused."
    response.data = endpoint_error_body(response.status_code, message, code=code)
    return response
