"""Nectar settings: every value comes from the environment (see .env.example)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from nectar.envtools import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    local_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent


# A .env file fills in what the real environment does not set.
load_dotenv(BASE_DIR / ".env", override=False)

DATA_DIR = Path(env_str("NECTAR_DATA_DIR") or BASE_DIR / ".nectar").resolve()

DEBUG = env_bool("DEBUG", False)
# Development mode (DEBUG, or NECTAR_DEV=1 as `make` and the test settings set it) may generate
# local keys and start the embedded database. Anything else is a deployment: every replica must be
# given the same keys and database, so a missing one stops start-up instead of splitting it.
DEVELOPMENT = DEBUG or env_bool("NECTAR_DEV", False)
_missing = [
    name
    for name, given in (
        ("SECRET_KEY", env_secret("SECRET_KEY")),
        (
            "NECTAR_ENCRYPTION_KEY (or NECTAR_ENCRYPTION_KEYS)",
            env_list("NECTAR_ENCRYPTION_KEYS") or env_secret("NECTAR_ENCRYPTION_KEY"),
        ),
        ("DATABASE_URL", env_secret("DATABASE_URL")),
    )
    if not given
]
if _missing and not DEVELOPMENT:
    raise ImproperlyConfigured(
        f"{', '.join(_missing)} must be set: DEBUG is off, so this is a deployment, and every web and worker "
        "replica needs the same values (Nectar generates no keys and starts no embedded database for it). "
        "For local development set NECTAR_DEV=1 (make run and make test do)."
    )

SECRET_KEY = env_secret("SECRET_KEY") or local_secret(DATA_DIR, "secret_key")


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# Encrypts customer database passwords and LLM keys at rest. Several comma-separated keys
# allow rotation: the first encrypts, all decrypt.
ENCRYPTION_KEYS = env_list("NECTAR_ENCRYPTION_KEYS") or [
    env_secret("NECTAR_ENCRYPTION_KEY") or local_secret(DATA_DIR, "encryption_key", _fernet_key)
]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PUBLIC_BASE_URL = env_str("NECTAR_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "axes",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "channels",
    "django_q",
    "nectar",
    "roles",
    "mcpservers",
    "agents",
    "learning",
    "endpoints",
    "web",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "nectar.middleware.BadTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "nectar.urls"
ASGI_APPLICATION = "nectar.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Platform database -------------------------------------------------------------------

DATABASE_URL = env_secret("DATABASE_URL")
EMBEDDED_DATABASE = not DATABASE_URL
if EMBEDDED_DATABASE:
    from nectar.embedded import embedded_database_url

    DATABASE_URL = embedded_database_url(DATA_DIR)

try:
    # Persistent platform connections (checked before reuse), so a request does not pay a new connection.
    _db = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if _db.get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (with the pgvector extension)")
_db.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
_db["TEST"] = {"NAME": env_str("NECTAR_TEST_DATABASE_NAME") or None}
for _key, _default in {
    "TIME_ZONE": None,
    "AUTOCOMMIT": True,
    "ATOMIC_REQUESTS": False,
}.items():
    _db.setdefault(_key, _default)
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and background queue --------------------------------------------------

REDIS_URL = env_secret("REDIS_URL")
Q_WORKERS = env_int("NECTAR_WORKERS", 2, minimum=1)
_q_common = {
    "name": "nectar",
    "workers": Q_WORKERS,
    "timeout": env_int("NECTAR_TASK_TIMEOUT", 1800, minimum=30),
    "retry": env_int("NECTAR_TASK_TIMEOUT", 1800, minimum=30) + 60,
    "max_attempts": 2,
    "ack_failures": True,
    "catch_up": False,
    "label": "Background tasks",
    "poll": 0.5,
}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    Q_CLUSTER = {**_q_common, "redis": REDIS_URL}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    INSTALLED_APPS.append("channels_postgres")
    # channels-postgres reaches its group table through this alias: the platform database itself
    # (in tests, the same test database).
    DATABASES["channels_postgres"] = {**_db, "TEST": {"MIRROR": "default"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "nectar.channel_layer.NectarPostgresChannelLayer",
            # The same dict as the platform database, so test runs follow the test database.
            "CONFIG": _db,
        }
    }
    Q_CLUSTER = {**_q_common, "orm": "default"}
    # Shared by every process (rate limits must hold across web replicas); `createcachetable` makes it.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "nectar_cache"}}

# --- Auth, i18n, static ------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login throttling (nectar/auth.py, django-axes): per account and per address, database-backed so
# that every web replica counts the same failures.
AUTHENTICATION_BACKENDS = ["nectar.auth.ThrottledLoginBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("NECTAR_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("NECTAR_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("NECTAR_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "nectar.auth.lockout_response"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# WhiteNoise serves static files from the web process (daphne has no static handler); with
# finders on, no collectstatic step is needed. Production may run collectstatic and turn them off.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Email (notifications) ---------------------------------------------------------------

# Approvals and decisions are always in-app notifications; they are emailed too once email is
# configured: EMAIL_HOST for SMTP, or EMAIL_BACKEND for any Django email backend.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or "django.core.mail.backends.smtp.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Nectar <nectar@localhost>")
NOTIFY_BY_EMAIL = bool(EMAIL_HOST or env_str("EMAIL_BACKEND"))

# --- REST API ----------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "600/min"),
        "anon": env_str("API_THROTTLE_ANON", "60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Nectar API",
    "DESCRIPTION": (
        "Governed, AI-ready APIs over your databases. The generated endpoints of an organization have their "
        "own OpenAPI document at /api/v1/x/<organization slug>/openapi.json (Swagger UI at "
        "/api/v1/x/-/swagger/<organization slug>/), readable by its members and its roles' API keys."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc assets are served by Nectar itself (no CDN: works offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "agents.models.AgentStatus",
        "EndpointStatusEnum": "endpoints.models.EndpointStatus",
        "McpServerStatusEnum": "mcpservers.models.MCPServerStatus",
    },
    # Deployed generated endpoints are added to the schema by a hook (keep the default enum hook).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "endpoints.openapi.postprocess_generated_endpoints",
    ],
}

# --- Nectar ------------------------------------------------------------------------------

# Customer databases.
CONNECTOR_CONNECT_TIMEOUT = env_int("NECTAR_CONNECT_TIMEOUT", 5, minimum=1)
CONNECTOR_STATEMENT_TIMEOUT_MS = env_int("NECTAR_STATEMENT_TIMEOUT_MS", 15000, minimum=100)
CONNECTOR_POOL_SIZE = env_int("NECTAR_POOL_SIZE", 5, minimum=1)
QUERY_ROW_CAP = env_int("NECTAR_ROW_CAP", 1000, minimum=1)
# The demo customer database (seed_demo); unset: a database "nectar_demo" on the platform's server.
DEMO_DATABASE_URL = env_str("DEMO_DATABASE_URL")
# Which targets Services may reach (roles/connectors/targets.py). Never the platform's own database;
# loopback, link-local and local sockets only when listed here (host names, addresses, CIDRs,
# socket directories); SQLite files only inside NECTAR_SQLITE_DIR (unset: no SQLite Services).
SERVICE_ALLOWED_HOSTS = env_list("NECTAR_SERVICE_ALLOWED_HOSTS", [])
SERVICE_SQLITE_DIR = env_str("NECTAR_SQLITE_DIR", "")
# The demo set-up's own target. On the embedded server the demo database is reached by its own
# least-privilege login (the one exception to "never the platform's server"); a DEMO_DATABASE_URL's
# host is allowed explicitly, since the operator chose it.
SERVICE_DEMO_TARGET: dict = {}
if EMBEDDED_DATABASE and not DEMO_DATABASE_URL:
    from nectar.embedded import DEMO_DATABASE, DEMO_ROLE

    SERVICE_DEMO_TARGET = {"host": _db["HOST"] or _db["OPTIONS"].get("host", ""), "database": DEMO_DATABASE,
                           "username": DEMO_ROLE}  # fmt: skip
elif DEMO_DATABASE_URL:
    from psycopg.conninfo import conninfo_to_dict

    try:
        _demo_host = str(conninfo_to_dict(DEMO_DATABASE_URL).get("host") or "")
    except Exception:  # reported by seed_demo with the field named
        _demo_host = ""
    if _demo_host and _demo_host not in SERVICE_ALLOWED_HOSTS:
        SERVICE_ALLOWED_HOSTS = [*SERVICE_ALLOWED_HOSTS, _demo_host]
SQL_COST_LIMIT = env_float("NECTAR_SQL_COST_LIMIT", 5_000_000.0)
# Generated endpoints: requests per API key (DRF rate syntax, e.g. "120/min").
ENDPOINT_RATE_LIMIT = env_str("NECTAR_ENDPOINT_RATE_LIMIT", "120/min")

# MCP.
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS", [])
MCP_COMPACT_THRESHOLD = env_int("MCP_COMPACT_THRESHOLD", 60, minimum=1)
MCP_HEALTH_INTERVAL_MINUTES = env_int("MCP_HEALTH_INTERVAL_MINUTES", 5, minimum=1)
# Threads doing the MCP servers' synchronous work (each keeps one platform connection), and how long
# such a connection is reused whatever DB_CONN_MAX_AGE says (see mcpservers/workers.py).
MCP_WORKER_THREADS = env_int("MCP_WORKER_THREADS", 8, minimum=1)
# Reads of PostgreSQL Services by MCP tools and live endpoints run on the event loop, without a worker
# thread (roles/connectors/onloop.py); off, every call runs in the worker threads.
READS_ON_LOOP = env_bool("NECTAR_READS_ON_LOOP", True)
# The largest share of those threads one organization may hold at once (its other calls queue).
MCP_TENANT_SHARE = float(env_str("MCP_TENANT_SHARE", "0.5"))
# Calls per key and per organization (N/second, N/minute or N/hour; 0 for none), shared by every replica.
MCP_RATE_LIMIT_PER_KEY = env_str("MCP_RATE_LIMIT_PER_KEY", "1200/min")
MCP_RATE_LIMIT_PER_ORGANIZATION = env_str("MCP_RATE_LIMIT_PER_ORGANIZATION", "6000/min")
# Longest like/ilike pattern and longest text value a filter may carry (refused up front with a clear error).
MAX_PATTERN_LENGTH = env_int("NECTAR_MAX_PATTERN_LENGTH", 1000, minimum=1)
MAX_VALUE_LENGTH = env_int("NECTAR_MAX_VALUE_LENGTH", 10000, minimum=1)
MCP_DB_CONN_MAX_AGE = env_int("MCP_DB_CONN_MAX_AGE", 60, minimum=0)
MCP_DB_HEALTH_CHECK_IDLE = env_int("MCP_DB_HEALTH_CHECK_IDLE", 5, minimum=0)
# Audit records of tool and endpoint calls: journaled per process, written in batches (mcpservers/audit.py).
AUDIT_JOURNAL_DIR = env_str("NECTAR_AUDIT_JOURNAL_DIR", str(DATA_DIR / "audit"))
AUDIT_FLUSH_SECONDS = float(env_int("NECTAR_AUDIT_FLUSH_MS", 200, minimum=10)) / 1000.0
AUDIT_BATCH_SIZE = env_int("NECTAR_AUDIT_BATCH_SIZE", 500, minimum=1)
AUDIT_SYNCHRONOUS = env_bool("NECTAR_AUDIT_SYNCHRONOUS", False)

# LLM providers: "offline" (default, no key), "anthropic" or "openai".
LLM_PROVIDER = env_str("LLM_PROVIDER", "offline")
LLM_MODEL = env_str("LLM_MODEL", "")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 60.0)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 4, minimum=0)
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY")
OPENAI_API_KEY = env_secret("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
# "model=input_per_mtok:output_per_mtok,..." in USD, for cost accounting.
LLM_PRICES = env_str("LLM_PRICES", "")
# The model's context window in tokens when the server does not say (0: probe it).
LLM_CONTEXT_TOKENS = env_int("LLM_CONTEXT_TOKENS", 0, minimum=0)
# Ollama's num_ctx, sent with every request to an Ollama server (0: Ollama's default, 4096).
OLLAMA_NUM_CTX = env_int("OLLAMA_NUM_CTX", 0, minimum=0)
# Daily LLM spending caps of every organization (an organization may set its own in admin); 0: none.
LLM_DAILY_TOKEN_LIMIT = env_int("LLM_DAILY_TOKEN_LIMIT", 0, minimum=0)
LLM_DAILY_COST_LIMIT_USD = env_float("LLM_DAILY_COST_LIMIT_USD", 0.0)
# Turns in which a model may repair an answer that is not the JSON asked for.
LLM_REPAIR_TURNS = env_int("LLM_REPAIR_TURNS", 2, minimum=0)
# The most output tokens an answer cut off by max_tokens is asked for again with.
LLM_MAX_OUTPUT_TOKENS = env_int("LLM_MAX_OUTPUT_TOKENS", 8192, minimum=256)

# Agents.
AGENT_MAX_ITERATIONS = env_int("AGENT_MAX_ITERATIONS", 50, minimum=1)
AGENT_TOKEN_BUDGET = env_int("AGENT_TOKEN_BUDGET", 200_000, minimum=1000)
# Wall-clock seconds a run may take in one worker; no LLM call starts after that.
AGENT_TIME_BUDGET_SECONDS = env_int("AGENT_TIME_BUDGET_SECONDS", 1800, minimum=10)
# The largest prompt one agent step sends (history is compacted to fit), in tokens.
AGENT_PROMPT_TOKENS = env_int("AGENT_PROMPT_TOKENS", 24_000, minimum=1000)
# How many times a design goes back to the architect (a platform check or the review found a
# problem), and a query back to the implementer, before the run fails with the reason.
AGENT_DESIGN_ROUNDS = env_int("AGENT_DESIGN_ROUNDS", 3, minimum=1)
AGENT_FIX_ROUNDS = env_int("AGENT_FIX_ROUNDS", 2, minimum=1)
EXECUTION_HEARTBEAT_SECONDS = env_int("EXECUTION_HEARTBEAT_SECONDS", 10, minimum=1)
EXECUTION_STALE_SECONDS = env_int("EXECUTION_STALE_SECONDS", 120, minimum=10)

# Embeddings: "local" (default, built in), "openai" (OpenAI-compatible, dimensions=384) or
# "sentence-transformers" (a locally installed model).
EMBEDDER = env_str("EMBEDDER", "local")
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "")
EMBEDDING_DIMENSIONS = 384

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        # django-axes narrates every failed login at INFO; lock-outs still come at WARNING.
        "axes": {"level": "WARNING"},
        # Publishing to a group nobody listens to is normal (no browser open); it is not worth a warning.
        "channels_postgres": {"level": "ERROR"},
        # The MCP SDK says "Terminating session" at INFO at the end of every stateless request.
        "mcp.server.streamable_http": {"level": "WARNING"},
    },
}
