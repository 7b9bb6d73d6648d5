"""OpenAPI: every operation documents the shared error body and the organization selector header."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api.context import ORGANIZATION_HEADER
from api.errors import ErrorBodySerializer

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: each error names the field, what is wrong and a code.",
    "401": "Missing or invalid credentials (send 'Authorization: Token <token>').",
    "403": "Your membership role does not allow this.",
    "404": "No such object in your organization (or no such organization).",
    "409": "The object is not in a state that allows this.",
    "424": "The customer database could not be used (unreachable, credentials refused, driver missing, "
    "failed); the code names the reason.",
    "429": "Too many requests; retry after the number of seconds in Retry-After.",
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class NectarAutoSchema(AutoSchema):
    def get_override_parameters(self):
        params = list(super().get_override_parameters())
        if not getattr(self.view, "schema_public", False):
            params.append(
                OpenApiParameter(
                    ORGANIZATION_HEADER,
                    str,
                    OpenApiParameter.HEADER,
                    required=False,
                    description="Slug of the organization to act in, when you belong to several "
                    "(default: your first). `?org=<slug>` works too.",
                )
            )
        return params

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        codes = ["400", "401", "403", "404", "429"]
        if self.method in UNSAFE:
            codes.append("409")
        if getattr(self.view, "action", None) in getattr(self.view, "customer_database_actions", ()):
            codes.append("424")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorBodySerializer, description=ERROR_DESCRIPTIONS[code]),
                    code,
                    direction=direction,
                )
        return responses
