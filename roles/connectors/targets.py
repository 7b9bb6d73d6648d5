"""Which databases a Service may reach: never the platform's own, and local ones only where allowed.

A Service is typed by an organization's owner, so its target is untrusted input. Refused unless
an operator allows it (settings, see .env.example):

- the platform's database server, by host and port, socket directory or any resolved address,
  through any engine or URL (the demo database the demo set-up placed there, reached as its own
  least-privilege user, is the one exception, named in settings by the demo set-up);
- local sockets (a host that is a directory, an empty host), and loopback, link-local,
  unspecified and multicast addresses, unless NECTAR_SERVICE_ALLOWED_HOSTS lists the host, its
  address or a network holding it, or the socket directory;
- SQLite files outside NECTAR_SQLITE_DIR (symbolic links resolved), or any when it is unset;
- driver options and URL parameters that choose another target or read local files (host,
  hostaddr, unix_socket, service, passfile, ...): only a short allow-list passes.

The same check runs when the form is saved (admin, REST API) and again each time a connection is
opened, after resolving the host (DNS rebinding), and PostgreSQL and MySQL connections are then
pinned to the address that was checked.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
# Driver options (Service.options, URL query parameters) a Service may set, per engine.
ALLOWED_OPTIONS = {
    "postgresql": {"schemas", "sslmode", "connect_timeout", "application_name", "target_session_attrs", "gssencmode"},
    "mysql": {"schemas", "charset", "connect_timeout", "ssl_disabled"},
    "sqlite": {"schemas"},
    "mssql": {"schemas", "driver", "encrypt", "trustservercertificate", "timeout"},
    "oracle": {"schemas", "service_name", "sid"},
}
_URL_BACKENDS = {"postgresql": ("postgresql", "postgres"), "mysql": ("mysql", "mariadb"), "sqlite": ("sqlite",)}


class TargetRefused(ValueError):
    """A Service's target is not allowed; `field` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Target:
    engine: str
    hosts: tuple[str, ...]  # host names, addresses or socket directories ("" for the driver's default)
    port: int | None
    database: str
    username: str
    options: dict


def _networks(entries) -> tuple[list, set[str], list[Path]]:
    networks, names, sockets = [], set(), []
    for entry in entries or ():
        entry = str(entry).strip()
        if not entry:
            continue
        if entry.startswith("/"):
            sockets.append(Path(os.path.realpath(entry)))
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return networks, names, sockets


def _addresses(host: str, port: int | None) -> list:
    try:
        infos = socket.getaddrinfo(host, port or None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if address not in found:
            found.append(address)
    return found


def _local(address) -> bool:
    return address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast


@dataclass(frozen=True)
class _Platform:
    sockets: tuple[Path, ...]
    addresses: tuple[tuple[object, int], ...]
    names: tuple[tuple[str, int], ...]


def _platform() -> _Platform:
    """Where the platform's database server listens (every configured database alias)."""
    sockets, addresses, names = [], [], []
    for db in settings.DATABASES.values():
        host = str(db.get("HOST") or db.get("OPTIONS", {}).get("host") or "")
        port = int(db.get("PORT") or db.get("OPTIONS", {}).get("port") or 5432)
        for part in host.split(","):
            part = part.strip()
            if not part or part.startswith("/"):
                sockets.append(Path(os.path.realpath(part or "/var/run/postgresql")))
                continue
            names.append((part.lower(), port))
            addresses.extend((address, port) for address in _addresses(part, port))
    return _Platform(tuple(sockets), tuple(addresses), tuple(names))


def _demo_exception(target: Target, host: str) -> bool:
    """The demo database the demo set-up placed on the platform's server, reached as its own user."""
    demo = getattr(settings, "SERVICE_DEMO_TARGET", None) or {}
    if not demo:
        return False
    same_host = os.path.realpath(host) == os.path.realpath(demo["host"]) if host.startswith("/") else False
    return same_host and target.database == demo["database"] and target.username == demo["username"]


def _check_socket(target: Target, host: str, field: str, platform: _Platform, allowed_sockets) -> None:
    directory = Path(os.path.realpath(host or "/var/run/postgresql"))
    if any(directory == s for s in platform.sockets) and not _demo_exception(target, host):
        raise TargetRefused(field, "This is the Nectar platform's own database server; a Service cannot use it.")
    if _demo_exception(target, host):
        return
    if not any(directory == s for s in allowed_sockets):
        what = "a local socket directory" if host else "no host (the local socket)"
        raise TargetRefused(
            field,
            f"The host is {what}; local sockets are refused unless an operator lists the directory in "
            "NECTAR_SERVICE_ALLOWED_HOSTS. Give the database server's host name.",
        )


def check_host(target: Target, host: str, *, field: str = "host") -> list:
    """Refuse a host of `target` (TargetRefused); returns the addresses it was checked at (empty for a socket)."""
    networks, names, allowed_sockets = _networks(getattr(settings, "SERVICE_ALLOWED_HOSTS", ()))
    platform = _platform()
    port = target.port or DEFAULT_PORTS.get(target.engine)
    if not host or host.startswith(("/", "@")):
        _check_socket(target, host, field, platform, allowed_sockets)
        return []
    name = host.lower().rstrip(".")
    if (name, port) in platform.names:
        raise TargetRefused(field, "This is the Nectar platform's own database server; a Service cannot use it.")
    addresses = _addresses(host, port)
    if not addresses:
        raise TargetRefused(field, f"The host {host!r} does not resolve to any address.")
    for address in addresses:
        if (address, port) in platform.addresses:
            raise TargetRefused(field, "This is the Nectar platform's own database server; a Service cannot use it.")
    if name in names:
        return addresses
    for address in addresses:
        if _local(address) and not any(address in network for network in networks):
            raise TargetRefused(
                field,
                f"The host {host!r} is a loopback or link-local address ({address}); such hosts are refused "
                "unless an operator lists them in NECTAR_SERVICE_ALLOWED_HOSTS.",
            )
    return addresses


def check_sqlite_path(path: str, *, field: str = "database") -> Path:
    """Refuse a SQLite file outside NECTAR_SQLITE_DIR; returns its resolved path."""
    base = getattr(settings, "SERVICE_SQLITE_DIR", "") or ""
    if not base:
        raise TargetRefused(
            field,
            "SQLite Services are turned off: an operator must set NECTAR_SQLITE_DIR to the directory of the files.",
        )
    if not path or path == ":memory:" or path.startswith("file:") or any(c in path for c in "?#\x00"):
        raise TargetRefused(field, "Give the path of a SQLite file (no URI parameters).")
    root = Path(os.path.realpath(base))
    resolved = Path(os.path.realpath(path if os.path.isabs(path) else root / path))
    if resolved != root and root not in resolved.parents:
        raise TargetRefused(field, f"SQLite files must be inside {root} (NECTAR_SQLITE_DIR).")
    return resolved


def _check_options(engine: str, options: dict, *, field: str) -> None:
    allowed = ALLOWED_OPTIONS.get(engine, {"schemas"})
    bad = sorted(str(k) for k in (options or {}) if str(k).lower() not in allowed)
    if bad:
        raise TargetRefused(
            field, f"Option(s) {', '.join(bad)} cannot be set on a Service; allowed: {', '.join(sorted(allowed))}."
        )


def target_from_parts(*, engine, host, port, database, username, url, options) -> Target:
    """The effective target of a Service's fields (a URL replaces the parts); TargetRefused for a bad URL."""
    options = dict(options or {})
    _check_options(engine, options, field="options")
    if not url:
        hosts = tuple(h.strip() for h in (host or "").split(",")) if engine != "sqlite" else ()
        return Target(engine, hosts or ("",), port, database or "", username or "", options)
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except Exception:
        raise TargetRefused(
            "url", "The URL is not a valid database URL (e.g. postgresql://user@host:5432/db)."
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _URL_BACKENDS.get(engine, (engine,)):
        raise TargetRefused("url", f"The URL is for {backend!r}, but the Service's engine is {engine!r}.")
    query = {k: v for k, v in parsed.query.items()}
    query_host = query.pop("host", None)
    _check_options(engine, query, field="url")
    if engine == "sqlite":
        return Target(engine, (), None, parsed.database or "", "", options)
    hosts = [parsed.host or ""]
    if query_host:
        hosts = [str(h) for h in (query_host if isinstance(query_host, tuple) else (query_host,))]
    split = tuple(h.strip() for part in hosts for h in str(part).split(","))
    return Target(engine, split or ("",), parsed.port, parsed.database or "", parsed.username or "", options)


def service_target_check(*, engine, host="", port=None, database="", username="", url="", options=None) -> Target:
    """Refuse a Service's target (TargetRefused naming the field), or return it. Resolves host names."""
    target = target_from_parts(
        engine=engine, host=host, port=port, database=database, username=username, url=url, options=options
    )
    if engine == "sqlite":
        check_sqlite_path(target.database, field="url" if url else "database")
        return target
    for one in target.hosts:
        check_host(target, one, field="url" if url else "host")
    return target


def service_target_problem(service) -> TargetRefused | None:
    """Why a Service (saved or not) may not be connected to, or None."""
    try:
        service_target_check(
            engine=service.engine,
            host=service.host or "",
            port=service.port,
            database=service.database or "",
            username=service.username or "",
            url=service.url or "",
            options=service.options or {},
        )
    except TargetRefused as refused:
        return refused
    return None
