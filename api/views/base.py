"""What every /api/v1/ view shares: authentication, organization scoping, errors, paging and the schema."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated

from api.context import caller_membership
from api.pagination import ApiPagination
from api.permissions import OrganizationAccess
from api.schema import NectarAutoSchema


def _unsafe_text(value) -> str | None:
    """A reason why a string cannot be stored (NUL byte, lone surrogate), or None."""
    if "\x00" in value:
        return "Text must not contain NUL characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Text must be valid Unicode (no lone surrogates)."
    return None


def _check_text(value, path: str, depth: int = 0) -> None:
    if depth > 32:
        raise exceptions.ValidationError({path or "body": ["The JSON is nested too deeply."]}, code="too_deep")
    if isinstance(value, str):
        reason = _unsafe_text(value)
        if reason:
            raise exceptions.ValidationError({path or "body": [reason]}, code="invalid_text")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path, depth + 1)
            _check_text(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{path}.{index}" if path else str(index), depth + 1)


class ApiViewMixin:
    permission_classes = [IsAuthenticated, OrganizationAccess]
    parser_classes = [JSONParser]
    pagination_class = ApiPagination
    schema = NectarAutoSchema()
    manager_actions: tuple = ()

    def initial(self, request, *args, **kwargs):
        # Text the platform database cannot store is refused up front, with the field named.
        for key, values in request.query_params.lists():
            _check_text(key, "query")
            for value in values:
                _check_text(value, key)
        for header in ("X-Nectar-Organization",):
            if header in request.headers:
                _check_text(request.headers[header], header)
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            _check_text(request.data, "")

    @property
    def membership(self):
        return caller_membership(self.request)

    @property
    def organization(self):
        return self.membership.organization

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        if self.request is not None and self.request.user.is_authenticated:
            context["organization"] = self.organization
        return context
