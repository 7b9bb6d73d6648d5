"""Organizations, memberships, customer databases (Services), Roles and their API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from nectar.crypto import EncryptedTextField

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "Use lowercase letters, digits and hyphens (1-64 characters, no leading or trailing hyphen).",
)


class LLMProvider(models.TextChoices):
    DEFAULT = "", "Platform default"
    OFFLINE = "offline", "Offline (built in)"
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI = "openai", "OpenAI or compatible"


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True, validators=[slug_validator])
    # Per-organization LLM override; empty means the platform's settings.
    llm_provider = models.CharField(max_length=20, choices=LLMProvider.choices, blank=True, default="")
    llm_model = models.CharField(max_length=200, blank=True, default="")
    llm_api_key = EncryptedTextField(blank=True, default="")
    llm_base_url = models.URLField(blank=True, default="")
    # Daily LLM spending caps; empty means the platform's LLM_DAILY_TOKEN_LIMIT / LLM_DAILY_COST_LIMIT_USD.
    llm_daily_token_limit = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="LLM tokens (input + output) the organization may use per day; empty: the platform's",
    )
    llm_daily_cost_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="LLM spending in USD per day, priced from LLM_PRICES; empty: the platform's",
    )
    # Review policy: read-only endpoints whose tests all passed may deploy without a human.
    auto_deploy_read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MembershipRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class MembershipQuerySet(models.QuerySet):
    def managers(self):
        return self.filter(role__in=[MembershipRole.OWNER, MembershipRole.ADMIN])


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=MembershipRole.choices, default=MembershipRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org"),
            models.CheckConstraint(
                condition=models.Q(role__in=["owner", "admin", "member"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in (MembershipRole.OWNER, MembershipRole.ADMIN)


class Engine(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"
    MSSQL = "mssql", "SQL Server"
    ORACLE = "oracle", "Oracle"


class Service(models.Model):
    """A customer database that Roles are granted access to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=200)
    engine = models.CharField(max_length=20, choices=Engine.choices)
    host = models.CharField(max_length=255, blank=True, default="", help_text="Host name, or a socket directory")
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    database = models.CharField(
        max_length=255, blank=True, default="", help_text="Database name (or file path for SQLite)"
    )
    username = models.CharField(max_length=255, blank=True, default="")
    password = EncryptedTextField(blank=True, default="")
    # A full SQLAlchemy URL may be given instead of the parts above; it may hold a password,
    # so it is encrypted too.
    url = EncryptedTextField(blank=True, default="")
    options = models.JSONField(default=dict, blank=True, help_text="Extra driver options (e.g. sslmode)")
    schema_cache = models.JSONField(null=True, blank=True, editable=False)
    schema_refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="service_unique_name_per_org"),
            models.CheckConstraint(
                condition=models.Q(engine__in=[e.value for e in Engine]), name="service_engine_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_engine_display()})"


class RoleQuerySet(models.QuerySet):
    def mcp_enabled(self):
        return self.filter(mcp_enabled=True, is_active=True)

    def for_organization(self, organization):
        return self.filter(organization=organization)


class Role(models.Model):
    """What a set of clients may do on one Service: the spec's Role with MCP settings."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    permissions = models.JSONField(default=list, blank=True)
    mcp_enabled = models.BooleanField(default=False)
    mcp_server_config = models.JSONField(null=True, blank=True)
    # try_sql (one checked, read-only statement) for external MCP clients; Nectar's own agents always have it.
    mcp_allow_try_sql = models.BooleanField(
        "MCP clients may try SQL",
        default=False,
        help_text="List the try_sql tool (one read-only statement, checked against this role's grants) "
        "to external MCP clients.",
    )
    mcp_tools_generated = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="roles")
    # RESTRICT, not PROTECT: a Service in use cannot be deleted on its own, but deleting the whole
    # Organization removes its Roles and Services together.
    service = models.ForeignKey(Service, on_delete=models.RESTRICT, related_name="roles")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = RoleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="role_unique_name_per_org"),
        ]
        indexes = [models.Index(fields=["organization", "mcp_enabled"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.__dict__.pop("_nectar_grants", None)  # grants resolved for the old permissions
        super().save(*args, **kwargs)


class ApiKeyQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


API_KEY_PREFIX = "nk_"


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class RoleApiKey(models.Model):
    """A bearer key bound to one Role, for MCP clients and generated endpoints. Stored hashed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, role: Role, name: str, created_by=None, expires_at=None) -> tuple[RoleApiKey, str]:
        """Create a key and return it with its secret, which is never retrievable again."""
        prefix = secrets.token_hex(4)
        secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            role=role,
            name=name,
            prefix=prefix,
            key_hash=hash_api_key(secret),
            created_by=created_by,
            expires_at=expires_at,
        )
        return key, secret

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
