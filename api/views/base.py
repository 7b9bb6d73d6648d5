"""What every /api/v1/ view shares: authentication, organization scoping, errors, paging and the schema."""

from __future__ import annotations

import logging

from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated

from api.context import caller_membership
from api.pagination import ApiPagination
from api.permissions import OrganizationAccess
from api.schema import NectarAutoSchema
from nectar.text import data_text_problem, query_string_problem

logger = logging.getLogger("nectar.security")


def _refuse_bad_text(request, found: tuple[str, str] | None) -> None:
    if found is None:
        return
    field, problem = found
    logger.warning(
        "refused text input on %s %s: %s %s (user %s)", request.method, request.path, field, problem, request.user.pk
    )
    raise exceptions.ValidationError({field: [problem]}, code="invalid_text")


class ApiViewMixin:
    permission_classes = [IsAuthenticated, OrganizationAccess]
    parser_classes = [JSONParser]
    pagination_class = ApiPagination
    schema = NectarAutoSchema()
    manager_actions: tuple = ()

    def initial(self, request, *args, **kwargs):
        # Text that cannot be stored or sent on (NUL, invalid UTF-8, lone surrogates) is refused up
        # front with the field named; the raw query string is read so bad bytes are not papered over.
        _refuse_bad_text(request, query_string_problem(request.META.get("QUERY_STRING", "")))
        for header in ("X-Nectar-Organization",):
            if header in request.headers:
                _refuse_bad_text(request, data_text_problem(request.headers[header], header))
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            _refuse_bad_text(request, data_text_problem(request.data, ""))

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
