"""Personal API tokens (separate from Role API keys) and who the caller is."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import ApiError
from api.serializers import MeSerializer, TokenRequestSerializer, TokenResponseSerializer
from api.services import CredentialsError, user_token_issue, user_token_revoke
from api.views.base import ApiViewMixin
from roles.selectors import memberships_for_user


def _memberships(user) -> list[dict]:
    rows = memberships_for_user(user=user)
    return [{"slug": m.organization.slug, "name": m.organization.name, "role": m.role} for m in rows]


class TokenView(ApiViewMixin, APIView):
    """POST username/password for a personal token (rotating any earlier one); DELETE revokes it."""

    schema_public = True

    def get_authenticators(self):
        # Issuing takes credentials in the body: no session (so no CSRF dance) and no old token needed.
        if getattr(self.request, "method", None) == "POST":
            return []
        return super().get_authenticators()

    def get_permissions(self):
        if getattr(self.request, "method", None) == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="auth_token_issue",
        tags=["auth"],
        summary="Issue (or rotate) your personal API token",
        description="Returns a new token and revokes the previous one. Send it as `Authorization: Token <token>`. "
        "Personal tokens act as you; Role API keys (nk_...) are for MCP clients and generated endpoints.",
        request=TokenRequestSerializer,
        responses={201: TokenResponseSerializer},
        auth=[],
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token = user_token_issue(request=request, **data.validated_data)
        except CredentialsError as exc:
            raise ApiError(str(exc), code="invalid_credentials", status_code=400) from exc
        body = {"token": token.key, "username": token.user.get_username(), "organizations": _memberships(token.user)}
        return Response(TokenResponseSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="auth_token_revoke",
        tags=["auth"],
        summary="Revoke your personal API token",
        request=None,
        responses={204: None},
    )
    def delete(self, request):
        user_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(ApiViewMixin, APIView):
    @extend_schema(
        operation_id="me",
        tags=["auth"],
        summary="Who you are and which organization this request acts in",
        responses={200: MeSerializer},
    )
    def get(self, request):
        membership = self.membership
        body = {
            "id": request.user.pk,
            "username": request.user.get_username(),
            "email": request.user.email or "",
            "organization": {
                "slug": membership.organization.slug,
                "name": membership.organization.name,
                "role": membership.role,
            },
            "organizations": _memberships(request.user),
        }
        return Response(MeSerializer(body).data)
