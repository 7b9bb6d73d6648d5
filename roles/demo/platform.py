"""The platform side of the demo: organization, logins, memberships, the Service and sample Roles."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from roles.demo.location import DemoLocation
from roles.demo.schema import DEMO_TABLES, DEMO_VIEWS
from roles.models import Engine, Membership, MembershipRole, Organization, Role, Service

DEMO_ORG_SLUG = "demo"
DEMO_ORG_NAME = "Demo Retail"
DEMO_SERVICE_NAME = "Demo retail database"
SALES_ROLE_NAME = "Sales analyst"
SUPPORT_ROLE_NAME = "EU support"

# username -> (superuser, membership role, description written beside the password)
DEMO_LOGINS = {
    "admin": (True, MembershipRole.OWNER, f"admin, owner of {DEMO_ORG_NAME}"),
    "analyst": (False, MembershipRole.MEMBER, f"business user, member of {DEMO_ORG_NAME}"),
}
_LOGIN_LINE = re.compile(r"^(?P<username>\S+) / (?P<password>\S+)(?: \(.*\))?$")

_BUSINESS_TABLES = tuple(name for name in DEMO_TABLES if name != "demo_metadata")


def _grant(schema: str, kind: str, name: str, actions: list[str], **extra) -> dict:
    return {"objectName": name, "schema": schema, "path": f"/{kind}/{name}", "actions": actions, **extra}


def demo_sales_analyst_permissions(*, schema: str = "public", routines: bool = True) -> list[dict]:
    """Read everything, run the read-side functions; the customers' phone numbers stay hidden.

    For a SQLite copy of the demo database pass schema="main", routines=False.
    """
    grants = [
        _grant(schema, "table", name, ["SELECT"], **({"columns": {"deny": ["phone"]}} if name == "customers" else {}))
        for name in _BUSINESS_TABLES
    ]
    grants += [_grant(schema, "view", name, ["SELECT"]) for name in DEMO_VIEWS]
    if routines:
        grants += [
            _grant(schema, "proc", name, ["EXECUTE"]) for name in ("customer_orders_since", "apply_loyalty_tier")
        ]
    return grants


def demo_eu_support_permissions(*, schema: str = "public") -> list[dict]:
    """EU customers, their orders and tickets; support may open and update EU tickets."""
    eu = {"rowFilter": {"region": "EU"}}
    return [
        _grant(schema, "table", "customers", ["SELECT"], **eu),
        _grant(schema, "table", "orders", ["SELECT"], **eu),
        _grant(schema, "table", "support_tickets", ["SELECT", "INSERT", "UPDATE"], **eu),
    ]


@dataclass
class DemoPlatformResult:
    organization: Organization
    service: Service
    roles: list[Role]
    logins_path: Path
    created: list[str] = field(default_factory=list)  # what this run created, e.g. "login admin"
    new_logins: list[str] = field(default_factory=list)


def _read_logins(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        match = _LOGIN_LINE.match(line.strip())
        if match:
            found[match["username"]] = match["password"]
    return found


def _write_logins(path: Path, passwords: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{username} / {password} ({DEMO_LOGINS[username][2]})" for username, password in passwords.items()]
    temporary = path.with_name(f".{path.name}.tmp")
    # Owner-only: the file holds passwords.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(temporary, path)


def demo_platform_ensure(*, location: DemoLocation, logins_path: Path, reset_schema_cache: bool = False):
    """Create what is missing of the demo organization, logins, Service and Roles; never reset a password.

    Existing Roles are left as they are (an admin may have edited them); the Service's connection
    settings follow the demo database's current location.
    """
    User = get_user_model()
    known = _read_logins(logins_path)
    passwords: dict[str, str] = {}
    created: list[str] = []
    new_logins: list[str] = []
    with transaction.atomic():
        organization, made = Organization.objects.get_or_create(slug=DEMO_ORG_SLUG, defaults={"name": DEMO_ORG_NAME})
        if made:
            created.append(f"organization {organization.name}")
        users = {}
        for username, (superuser, membership_role, _) in DEMO_LOGINS.items():
            user = User.objects.filter(username=username).first()
            if user is None:
                # A password already written down (e.g. after the platform database was reset) is reused.
                password = known.get(username) or secrets.token_urlsafe(12)
                user = User.objects.create_user(
                    username=username,
                    email=f"{username}@demo.example",
                    password=password,
                    is_staff=superuser,
                    is_superuser=superuser,
                )
                created.append(f"login {username}")
                new_logins.append(username)
                passwords[username] = password
            elif username in known:
                passwords[username] = known[username]
            users[username] = user
            _, made = Membership.objects.get_or_create(
                user=user, organization=organization, defaults={"role": membership_role}
            )
            if made:
                created.append(f"membership {username} ({membership_role})")

        service_username, service_password = location.service_login
        connection = {
            "engine": Engine.POSTGRESQL,
            "host": location.host,
            "port": location.port,
            "database": location.database,
            "username": service_username,
        }
        service = Service.objects.filter(organization=organization, name=DEMO_SERVICE_NAME).first()
        if service is None:
            service = Service.objects.create(
                organization=organization, name=DEMO_SERVICE_NAME, password=service_password, **connection
            )
            created.append(f"service {service.name}")
        else:
            changed = [name for name, value in connection.items() if getattr(service, name) != value]
            if service.password != service_password:
                changed.append("password")
            for name in changed:
                setattr(service, name, service_password if name == "password" else connection[name])
            if changed or reset_schema_cache:
                service.schema_cache = None
                service.schema_refreshed_at = None
                service.save(update_fields=[*changed, "schema_cache", "schema_refreshed_at", "updated_at"])

        roles = []
        for name, description, permissions in (
            (
                SALES_ROLE_NAME,
                "Reads customers, orders, products, payments, tickets and activity, with the revenue views; "
                "customers' phone numbers are hidden.",
                demo_sales_analyst_permissions(),
            ),
            (
                SUPPORT_ROLE_NAME,
                "EU customers, their orders and support tickets; may open and update EU tickets.",
                demo_eu_support_permissions(),
            ),
        ):
            role, made = Role.objects.get_or_create(
                organization=organization,
                name=name,
                defaults={
                    "service": service,
                    "description": description,
                    "permissions": permissions,
                    "created_by": users["admin"],
                },
            )
            if made:
                created.append(f"role {name}")
                if name == SALES_ROLE_NAME:
                    # The demo is ready to use: the analyst Role gets its MCP server at once.
                    role.mcp_enabled = True
                    role.save(update_fields=["mcp_enabled", "updated_at"])
            roles.append(role)
    if new_logins or set(passwords) != set(known):
        _write_logins(logins_path, {**{u: p for u, p in known.items() if u in DEMO_LOGINS}, **passwords})
    return DemoPlatformResult(
        organization=organization,
        service=service,
        roles=roles,
        logins_path=logins_path,
        created=created,
        new_logins=new_logins,
    )
