"""Where the demo customer database lives: DEMO_DATABASE_URL, else "nectar_demo" beside the platform's database."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEMO_DATABASE_NAME = "nectar_demo"


@dataclass(frozen=True)
class DemoLocation:
    host: str  # a host name, or a socket directory for the embedded server
    port: int | None
    database: str
    username: str
    password: str = field(default="", repr=False)
    # The demo Service's own login (least privilege); empty: the same as the one that builds it.
    service_username: str = ""
    service_password: str = field(default="", repr=False)

    @property
    def service_login(self) -> tuple[str, str]:
        if self.service_username:
            return self.service_username, self.service_password
        return self.username, self.password

    @property
    def url(self) -> str:
        """A postgresql:// URL for psycopg (holds the password, if any: never log it)."""
        credentials = quote(self.username, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        path = quote(self.database, safe="")
        if self.host.startswith("/"):
            query = f"?host={quote(self.host, safe='/')}"
            if self.port:
                query += f"&port={self.port}"
            return f"postgresql://{credentials}@/{path}{query}"
        netloc = self.host or "localhost"
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if self.port:
            netloc += f":{self.port}"
        return f"postgresql://{credentials}@{netloc}/{path}"

    @property
    def display(self) -> str:
        """Where it is, without credentials."""
        return f"{self.database} on {self.host or 'localhost'}{f':{self.port}' if self.port else ''}"


def demo_location_from_url(url: str) -> DemoLocation:
    from psycopg.conninfo import conninfo_to_dict

    if not url.startswith(("postgresql://", "postgres://")):
        raise ImproperlyConfigured("DEMO_DATABASE_URL must be a postgresql:// URL")
    try:
        params = conninfo_to_dict(url)
    except Exception as exc:
        raise ImproperlyConfigured(f"DEMO_DATABASE_URL is not a valid URL: {type(exc).__name__}") from None
    if not params.get("dbname"):
        raise ImproperlyConfigured("DEMO_DATABASE_URL must name a database: postgresql://user@host:port/<database>")
    port = params.get("port")
    return DemoLocation(
        host=str(params.get("host") or ""),
        port=int(port) if port else None,
        database=str(params["dbname"]),
        username=str(params.get("user") or ""),
        password=str(params.get("password") or ""),
    )


def demo_database_location() -> DemoLocation:
    """DEMO_DATABASE_URL when set; otherwise a "nectar_demo" database on the platform's PostgreSQL server."""
    url = getattr(settings, "DEMO_DATABASE_URL", "")
    if url:
        return demo_location_from_url(url)
    platform = settings.DATABASES["default"]
    # dj-database-url puts a socket directory given as ?host=... into OPTIONS.
    host = platform.get("HOST") or platform.get("OPTIONS", {}).get("host") or ""
    port = platform.get("PORT") or platform.get("OPTIONS", {}).get("port")
    service_username = service_password = ""
    if getattr(settings, "EMBEDDED_DATABASE", False):
        # Built by the platform's login, used by the demo Service through its own least-privilege login.
        from nectar.embedded import DEMO_ROLE, embedded_password

        service_username, service_password = DEMO_ROLE, embedded_password(settings.DATA_DIR, DEMO_ROLE)
    return DemoLocation(
        host=str(host),
        port=int(port) if port else None,
        database=DEMO_DATABASE_NAME,
        username=str(platform.get("USER") or ""),
        password=str(platform.get("PASSWORD") or ""),
        service_username=service_username,
        service_password=service_password,
    )
