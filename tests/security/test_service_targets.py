"""Service targets are governed: never the platform's database, local ones only where an operator allows.

The suite opts in to 127.0.0.1 and its temporary directory (tests/conftest.py); these tests take
that opt-in away to check the defaults, and check that a refused target is refused again when a
connection is opened, so no path connects to it.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from roles.connectors import service_test_connection
from roles.connectors import targets as targets_module
from roles.demo import demo_build_postgres
from roles.demo.loader import demo_grant_service_login
from roles.executor import ExecutorError, executor_query
from roles.models import Role, Service
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _platform_socket() -> str:
    db = connection.settings_dict
    return db.get("HOST") or db["OPTIONS"].get("host")


@pytest.fixture
def defaults(settings):
    """No operator opt-in at all: the defaults of a fresh install."""
    settings.SERVICE_ALLOWED_HOSTS = []
    settings.SERVICE_SQLITE_DIR = ""
    return settings


def _post(api, **fields):
    return api.post("/api/v1/services/", {"name": f"s-{uuid.uuid4().hex[:6]}", **fields}, format="json")


def _refused(response, field: str, words: str) -> None:
    assert response.status_code == 400, response.content
    (item,) = response.json()["errors"]
    assert item["field"] == field, item
    assert words in item["message"], item["message"]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"engine": "postgresql", "host": "PLATFORM", "database": "nectar", "username": "postgres"},
            "host",
            "platform",
        ),
        (
            {"engine": "postgresql", "host": "PLATFORM", "database": "postgres", "username": "nectar"},
            "host",
            "platform",
        ),
        ({"engine": "mysql", "host": "PLATFORM", "database": "x", "username": "root"}, "host", "platform"),
        ({"engine": "postgresql", "url": "postgresql://postgres@/nectar?host=PLATFORM"}, "url", "platform"),
        ({"engine": "postgresql", "url": "postgresql+psycopg://postgres@/nectar?host=PLATFORM"}, "url", "platform"),
        ({"engine": "postgresql", "host": "127.0.0.1", "database": "x"}, "host", "loopback"),
        ({"engine": "postgresql", "host": "localhost", "database": "x"}, "host", "loopback"),
        ({"engine": "mysql", "host": "127.0.0.2", "port": 3306, "database": "x"}, "host", "loopback"),
        ({"engine": "postgresql", "host": "::1", "database": "x"}, "host", "loopback"),
        ({"engine": "postgresql", "host": "169.254.169.254", "database": "x"}, "host", "link-local"),
        ({"engine": "postgresql", "host": "0.0.0.0", "database": "x"}, "host", "loopback"),  # noqa: S104
        ({"engine": "mysql", "url": "mysql+pymysql://root@127.0.0.1/mysql"}, "url", "loopback"),
        ({"engine": "postgresql", "host": "/tmp", "database": "x"}, "host", "socket"),
        (
            {"engine": "mysql", "url": "mysql+pymysql://root@db.example.com/x?unix_socket=/tmp/m.sock"},
            "url",
            "unix_socket",
        ),
        (
            {"engine": "postgresql", "host": "db.example.com", "database": "x", "options": {"host": "/tmp"}},
            "options",
            "host",
        ),
        ({"engine": "postgresql", "url": "postgresql://u@db.example.com/x?hostaddr=127.0.0.1"}, "url", "hostaddr"),
        ({"engine": "postgresql", "url": "mysql+pymysql://root@db.example.com/x"}, "url", "engine"),
        ({"engine": "sqlite", "database": "/etc/passwd"}, "database", "NECTAR_SQLITE_DIR"),
        ({"engine": "sqlite", "url": "sqlite:////etc/passwd"}, "url", "NECTAR_SQLITE_DIR"),
    ],
)
def test_the_api_refuses_forbidden_targets_by_default_with_the_field(owner_api, org, defaults, fields, field, words):
    fields = {k: (v.replace("PLATFORM", _platform_socket()) if isinstance(v, str) else v) for k, v in fields.items()}
    _refused(_post(owner_api, **fields), field, words)
    assert not Service.objects.filter(organization=org).exists()


def test_the_platform_stays_refused_even_when_its_host_is_allowed(owner_api, settings, monkeypatch):
    settings.SERVICE_ALLOWED_HOSTS = ["127.0.0.1", "localhost", _platform_socket()]
    # As if the platform's database listened on 127.0.0.1:5432 (DATABASE_URL on TCP).
    real = targets_module._platform

    def platform_on_tcp():
        found = real()
        return targets_module._Platform(
            found.sockets,
            (*found.addresses, (targets_module.ipaddress.ip_address("127.0.0.1"), 5432)),
            (*found.names, ("localhost", 5432)),
        )

    monkeypatch.setattr(targets_module, "_platform", platform_on_tcp)
    for host in ("127.0.0.1", "localhost", _platform_socket()):
        _refused(_post(owner_api, engine="postgresql", host=host, port=5432, database="nectar"), "host", "platform")
    # Another port of the same host is another server.
    response = _post(owner_api, engine="postgresql", host="127.0.0.1", port=5433, database="x")
    assert response.status_code == 201, response.content


def test_an_operator_allow_list_admits_hosts_networks_and_sqlite_files(owner_api, settings, tmp_path):
    settings.SERVICE_ALLOWED_HOSTS = ["127.0.0.0/8"]
    settings.SERVICE_SQLITE_DIR = str(tmp_path)
    (tmp_path / "shop.db").write_bytes(b"")
    assert _post(owner_api, engine="postgresql", host="127.0.0.1", database="x").status_code == 201
    assert _post(owner_api, engine="mysql", host="127.0.0.5", database="x").status_code == 201
    assert _post(owner_api, engine="sqlite", database=str(tmp_path / "shop.db")).status_code == 201
    _refused(_post(owner_api, engine="postgresql", host="::1", database="x"), "host", "loopback")
    outside = tmp_path.parent / f"outside-{uuid.uuid4().hex[:6]}.db"
    outside.write_bytes(b"")
    os.symlink(outside, tmp_path / "link.db")
    _refused(_post(owner_api, engine="sqlite", database=str(tmp_path / "link.db")), "database", "inside")
    _refused(_post(owner_api, engine="sqlite", database=str(tmp_path / "../x.db")), "database", "inside")
    _refused(_post(owner_api, engine="sqlite", database=str(tmp_path / "shop.db") + "?mode=rwc"), "database", "URI")


def test_the_admin_form_refuses_the_platform_with_a_message_and_saves_nothing(client, owner, org, defaults):
    assert client.login(username=owner.username, password=PASSWORD)
    response = client.post(
        "/admin/roles/service/add/",
        {
            "organization": str(org.pk),
            "name": "takeover",
            "engine": "postgresql",
            "host": _platform_socket(),
            "database": "nectar",
            "username": "postgres",
            "options": "{}",
        },
    )
    assert response.status_code == 200
    assert "platform" in response.content.decode()
    assert not Service.objects.filter(organization=org).exists()


def test_a_refused_target_saved_behind_the_forms_back_is_refused_again_at_connection(org, defaults):
    service = Service.objects.create(
        organization=org, name="sneaky", engine="postgresql", host=_platform_socket(), database="nectar", username="x"
    )
    role = Role.objects.create(
        organization=org,
        service=service,
        name="r",
        permissions=[
            {"objectName": "auth_user", "schema": "public", "path": "/table/auth_user", "actions": ["SELECT"]}
        ],
    )
    result = service_test_connection(service=service)
    assert (result.ok, result.reason) == (False, "target_refused")
    assert "platform" in result.detail
    with pytest.raises(ExecutorError) as refused:
        executor_query(role=role, object_name="auth_user", schema="public")
    assert refused.value.code in ("database_unavailable", "unknown_object", "forbidden")


def test_a_host_that_resolves_elsewhere_at_connection_time_is_refused(org, settings, monkeypatch, customer_database):
    """DNS rebinding: checked when saved (a public address), refused when it resolves to loopback later."""
    settings.SERVICE_ALLOWED_HOSTS = []
    answers = {"db.example.com": [targets_module.ipaddress.ip_address("93.184.216.34")]}
    real = targets_module._addresses
    monkeypatch.setattr(targets_module, "_addresses", lambda host, port: answers.get(host) or real(host, port))
    service = Service.objects.create(
        organization=org, name="rebinding", engine="postgresql", host="db.example.com", port=5432,
        database=customer_database["name"], username="postgres",
    )  # fmt: skip
    assert targets_module.service_target_problem(service) is None
    answers["db.example.com"] = [targets_module.ipaddress.ip_address("127.0.0.1")]
    result = service_test_connection(service=service)
    assert (result.ok, result.reason) == (False, "target_refused"), result


def test_the_platform_database_needs_a_password_and_nectar_uses_its_own_login():
    db = connection.settings_dict
    assert db["USER"] == "nectar" and db["PASSWORD"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=_platform_socket(), dbname=db["NAME"], user="postgres", connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=_platform_socket(), dbname=db["NAME"], user="nectar", connect_timeout=5).close()


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def demo_on_pg():
    name = f"nectar_demo_sec_{uuid.uuid4().hex[:8]}"
    login = f"demo_login_{uuid.uuid4().hex[:8]}"
    demo_build_postgres(url=f"{PG_SERVER}/{name}", scale=0.02)
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD 'pw-{login}'")
    demo_grant_service_login(url=f"{PG_SERVER}/{name}", login=login)
    yield name, login
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {login}")


def test_the_demo_login_reads_the_demo_objects_and_writes_only_where_the_demo_roles_write(demo_on_pg):
    name, login = demo_on_pg
    with psycopg.connect(f"postgresql://{login}:pw-{login}@127.0.0.1:5432/{name}", autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM support_tickets").fetchone()[0] >= 0
        conn.execute(
            "UPDATE support_tickets SET status = status WHERE ticket_id = (SELECT min(ticket_id) FROM support_tickets)"
        )
        conn.execute("UPDATE accounts SET tier = tier WHERE customer_id = 1")
        for statement in (
            "SELECT * FROM demo_metadata",
            "INSERT INTO customers (first_name) VALUES ('x')",
            "UPDATE customers SET first_name = first_name",
            "DELETE FROM orders",
            "UPDATE accounts SET status = status",
            "CREATE TABLE intruder (id int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_the_demo_target_on_the_embedded_server_is_the_one_exception(settings, owner_api):
    settings.SERVICE_ALLOWED_HOSTS = []
    settings.SERVICE_DEMO_TARGET = {"host": _platform_socket(), "database": "nectar_demo", "username": "nectar_demo"}
    socket = _platform_socket()
    ok = _post(owner_api, engine="postgresql", host=socket, database="nectar_demo", username="nectar_demo")
    assert ok.status_code == 201, ok.content
    for database, username in (("nectar", "nectar_demo"), ("nectar_demo", "postgres"), ("nectar_demo", "nectar")):
        _refused(
            _post(owner_api, engine="postgresql", host=socket, database=database, username=username), "host", "platform"
        )
    assert django_settings.SERVICE_DEMO_TARGET["database"] == "nectar_demo"
