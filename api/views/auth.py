"""Personal API tokens (separate from Role API keys) and who the caller is."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import ApiError
from api.models import PersonalToken
from api.serializers import (
    MeSerializer,
    PersonalTokenCreatedSerializer,
    PersonalTokenSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)
from api.services import (
    CredentialsError,
    LoginLocked,
    personal_token_create,
    personal_token_revoke,
    user_token_issue,
    user_token_revoke,
)
from api.views.base import ApiViewMixin
from roles.selectors import memberships_for_user


def _memberships(user) -> list[dict]:
    rows = memberships_for_user(user=user)
    return [{"slug": m.organization.slug, "name": m.organization.name, "role": m.role} for m in rows]


class TokenView(ApiViewMixin, APIView):
    """POST username/password for a new named personal token; DELETE revokes the token of the request."""

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
        summary="Issue a new personal API token",
        description="Returns a new named token; your other tokens stay valid (list and revoke them at "
        "/api/v1/auth/tokens/). Send it as `Authorization: Token <token>`. Sign-ins are throttled per "
        "account and per address (429 when locked out). Personal tokens act as you; Role API keys "
        "(nk_...) are for MCP clients and generated endpoints.",
        request=TokenRequestSerializer,
        responses={201: TokenResponseSerializer},
        auth=[],
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token, secret = user_token_issue(request=request, **data.validated_data)
        except LoginLocked as exc:
            raise ApiError(str(exc), code="locked_out", status_code=429) from exc
        except CredentialsError as exc:
            raise ApiError(str(exc), code="invalid_credentials", status_code=400) from exc
        body = {
            "token": secret,
            "id": token.pk,
            "name": token.name,
            "username": token.user.get_username(),
            "organizations": _memberships(token.user),
        }
        return Response(TokenResponseSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="auth_token_revoke",
        tags=["auth"],
        summary="Revoke the personal API token this request is sent with",
        request=None,
        responses={204: None},
    )
    def delete(self, request):
        user_token_revoke(user=request.user, token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PersonalTokenListView(ApiViewMixin, APIView):
    """Your personal tokens (never their secrets), and a new one."""

    pagination_class = None  # a person has a handful of tokens: one plain list

    def get_permissions(self):
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="auth_tokens_list",
        tags=["auth"],
        summary="Your personal API tokens",
        responses={200: PersonalTokenSerializer(many=True)},
    )
    def get(self, request):
        tokens = PersonalToken.objects.filter(user=request.user)
        return Response(PersonalTokenSerializer(tokens, many=True).data)

    @extend_schema(
        operation_id="auth_tokens_create",
        tags=["auth"],
        summary="Create a named personal API token (its secret is shown once)",
        request=PersonalTokenSerializer,
        responses={201: PersonalTokenCreatedSerializer},
    )
    def post(self, request):
        data = PersonalTokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token, secret = personal_token_create(user=request.user, name=data.validated_data["name"])
        except CredentialsError as exc:
            raise ApiError(str(exc), code="invalid", field="name") from exc
        body = {**PersonalTokenSerializer(token).data, "token": secret}
        return Response(PersonalTokenCreatedSerializer(body).data, status=status.HTTP_201_CREATED)


class PersonalTokenDetailView(ApiViewMixin, APIView):
    def get_permissions(self):
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="auth_tokens_revoke",
        tags=["auth"],
        summary="Revoke one of your personal API tokens",
        request=None,
        responses={204: None},
    )
    def delete(self, request, token_id):
        personal_token_revoke(user=request.user, token_id=token_id)
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
