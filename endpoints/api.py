"""Authentication, permission and throttling of live generated endpoints (Role API keys)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from endpoints.cache import api_key_cached
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
        key_hash = hash_api_key(secret)
        key = api_key_cached(
            key_hash,
            lambda: RoleApiKey.objects.select_related("role", "role__organization").filter(key_hash=key_hash).first(),
        )
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not key.is_usable:
            raise exceptions.AuthenticationFailed("This API key has been revoked or has expired.")
        if not key.role.is_active:
            raise exceptions.AuthenticationFailed("The role of this API key is disabled.")
        # last_used_at is kept by the audit batches (at most once a minute per key), off the request path.
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="nectar"'


class HasRoleApiKey(BasePermission):
    message = "Missing API key: send 'Authorization: Bearer <key>' with a key of the endpoint's role."

    def has_permission(self, request, view):
        return isinstance(request.user, ApiKeyPrincipal)


class ApiKeyRateThrottle(BaseThrottle):
    """Requests per API key at settings.ENDPOINT_RATE_LIMIT, shared by every replica (mcpservers.limits).

    Counted by leases on an atomic counter (Redis INCRBY, or one INSERT ... ON CONFLICT statement):
    most calls spend the process's lease and cost no round trip at all.
    """

    def allow_request(self, request, view):
        principal = request.user
        if not isinstance(principal, ApiKeyPrincipal):
            return True
        allowed, self.retry_after = endpoint_rate_take(principal.api_key)
        return allowed

    def wait(self):
        return getattr(self, "retry_after", None)


def endpoint_rate_take(api_key) -> tuple[bool, int | None]:
    """Spend one call of the key's rate limit (settings.ENDPOINT_RATE_LIMIT): (allowed, retry_after)."""
    from mcpservers.limits import parse_rate, take

    rate = parse_rate(settings.ENDPOINT_RATE_LIMIT)
    if rate is None:
        return True, None
    return take(f"endpoint:key:{api_key.pk}", rate)
