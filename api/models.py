"""Personal API tokens: several named tokens per user, stored hashed, shown once, revocable."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "npt_"  # noqa: S105 - the public prefix of every token, not a secret


def token_hash(secret: str) -> str:
    # The secrets are 256-bit random strings: a plain SHA-256 is as good as a slow hash for them.
    return hashlib.sha256(secret.encode()).hexdigest()


class PersonalTokenQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, user__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class PersonalToken(models.Model):
    """A token that acts as its user on the REST API (`Authorization: Token npt_...`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_tokens")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=24, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = PersonalTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, user, name: str, expires_at=None) -> tuple[PersonalToken, str]:
        """Create a token and return it with its secret, which is never retrievable again."""
        prefix = secrets.token_hex(4)
        secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        token = cls.objects.create(
            user=user, name=name, prefix=prefix, key_hash=token_hash(secret), expires_at=expires_at
        )
        return token, secret

    @classmethod
    def find(cls, secret: str) -> PersonalToken | None:
        """The usable token with this secret (found through its prefix when it has one), or None."""
        queryset = cls.objects.usable().select_related("user")
        digest = token_hash(secret)
        if secret.startswith(TOKEN_PREFIX):
            prefix, sep, _ = secret[len(TOKEN_PREFIX) :].partition("_")
            return queryset.filter(prefix=prefix, key_hash=digest).first() if sep and prefix else None
        return queryset.filter(key_hash=digest).first()  # a token issued before named tokens

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
