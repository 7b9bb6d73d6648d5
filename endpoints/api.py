"""Authentication, permission and throttling of live generated endpoints (Role API keys)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from roles.models import RoleApiKey, hash_api_key


class ApiKeyPrincipal:
    """The caller of a generated endpoint: one Role API key (no Django user)."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.pk = None
        self.id = None

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}…"


class RoleApiKeyAuthentication(BaseAuthentication):
    """Authorization: Bearer nk_... -> (ApiKeyPrincipal, RoleApiKey); 401 when missing, unknown, revoked or expired."""

    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != self.keyword or len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the API key as 'Authorization: Bearer <key>'.")
        try:
            secret = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid API key.") from exc
        key = (
            RoleApiKey.objects.select_related("role", "role__organization")
            .filter(key_hash=hash_api_key(secret))
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not key.is_usable:
            raise exceptions.AuthenticationFailed("This API key has been revoked or has expired.")
        if not key.role.is_active:
            raise exceptions.AuthenticationFailed("The role of this API key is disabled.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            type(key).objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="nectar"'


class HasRoleApiKey(BasePermission):
    message = "Missing API key: send 'Authorization: Bearer <key>' with a key of the endpoint's role."

    def has_permission(self, request, view):
        return isinstance(request.user, ApiKeyPrincipal)


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key, at settings.ENDPOINT_RATE_LIMIT (read on each request so it can be changed)."""

    scope = "generated_endpoint"

    def __init__(self):
        # The rate is read per request in allow_request, not frozen at import time.
        pass

    def allow_request(self, request, view):
        self.rate = settings.ENDPOINT_RATE_LIMIT
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        principal = request.user
        if not isinstance(principal, ApiKeyPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": str(principal.api_key.pk)}
