"""Real customer databases for the roles suite: PostgreSQL 15, MariaDB and a SQLite file.

Each engine's database is created once per module (schema, views, routines) and its rows are
re-seeded before every test, so tests may write freely. Identifiers include mixed case, quoted
names with spaces, reserved words and (PostgreSQL) a non-default schema.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from roles.connectors import service_engines_dispose
from roles.models import Role, Service

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MY_ADMIN_URL = "mysql+pymysql://root@127.0.0.1:3306/"

PG_SCHEMA = [
    "CREATE SCHEMA sales",
    "CREATE TYPE mood AS ENUM ('happy', 'sad')",
    """CREATE TABLE customers (
        id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, region text NOT NULL DEFAULT 'EU',
        balance numeric(12,2) DEFAULT 0, secret text, created_at timestamptz, birthday date,
        active boolean DEFAULT true, tags text[], profile jsonb, ref uuid, avatar bytea, wake time,
        session_len interval, mood mood, score double precision)""",
    """CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer REFERENCES customers(id) ON DELETE CASCADE,
        total numeric(10,2) NOT NULL CHECK (total >= 0), placed_at timestamptz)""",
    "CREATE INDEX orders_customer_idx ON orders (customer_id)",
    'CREATE TABLE "MixedCase" ("Id" integer PRIMARY KEY, "Display Name" text, "select" text)',
    'CREATE TABLE "order" (id integer PRIMARY KEY, "group" text)',
    "CREATE TABLE sales.invoices (id integer PRIMARY KEY, amount numeric(10,2), region text)",
    "CREATE TABLE secrets (id integer PRIMARY KEY, pin text)",
    "CREATE VIEW eu_customers AS SELECT id, name, region FROM customers WHERE region = 'EU'",
    "CREATE FUNCTION add_numbers(a integer, b integer DEFAULT 1) RETURNS integer LANGUAGE sql IMMUTABLE "
    "AS 'SELECT a + b'",
    "CREATE FUNCTION customers_in(p_region text) RETURNS TABLE(id integer, name text) LANGUAGE sql STABLE "
    "AS $$ SELECT id, name FROM customers WHERE region = p_region ORDER BY id $$",
    """CREATE PROCEDURE bump_balance(IN p_id integer, IN p_amount numeric, INOUT new_balance numeric DEFAULT NULL)
       LANGUAGE plpgsql AS $$ BEGIN
         UPDATE customers SET balance = balance + p_amount WHERE id = p_id RETURNING balance INTO new_balance;
       END $$""",
    "CREATE FUNCTION wipe_secrets() RETURNS void LANGUAGE sql AS 'DELETE FROM secrets'",
]

MY_SCHEMA = [
    """CREATE TABLE customers (
        id int AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200) UNIQUE,
        region varchar(10) NOT NULL DEFAULT 'EU', balance decimal(12,2) DEFAULT 0, secret varchar(100),
        created_at datetime, birthday date, active tinyint(1) DEFAULT 1, profile json, ref char(36),
        avatar blob, wake time, mood enum('happy','sad'), score double)""",
    """CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, customer_id int,
        total decimal(10,2) NOT NULL CHECK (total >= 0), placed_at datetime,
        CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE)""",
    "CREATE TABLE `MixedCase` (`Id` int PRIMARY KEY, `Display Name` varchar(100), `select` varchar(100))",
    "CREATE TABLE `order` (id int PRIMARY KEY, `group` varchar(100))",
    "CREATE TABLE secrets (id int PRIMARY KEY, pin varchar(20))",
    "CREATE VIEW eu_customers AS SELECT id, name, region FROM customers WHERE region = 'EU'",
    "CREATE FUNCTION add_numbers(a INT, b INT) RETURNS INT DETERMINISTIC RETURN a + b",
    """CREATE PROCEDURE bump_balance(IN p_id INT, IN p_amount DECIMAL(12,2), OUT new_balance DECIMAL(12,2))
       BEGIN UPDATE customers SET balance = balance + p_amount WHERE id = p_id;
             SELECT balance INTO new_balance FROM customers WHERE id = p_id; END""",
]

SQLITE_SCHEMA = [
    """CREATE TABLE customers (
        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, email TEXT UNIQUE, region TEXT NOT NULL DEFAULT 'EU',
        balance NUMERIC(12,2) DEFAULT 0, secret TEXT, created_at DATETIME, birthday DATE, active BOOLEAN DEFAULT 1,
        profile JSON, ref TEXT, avatar BLOB, wake TIME, mood TEXT, score REAL)""",
    """CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT,
        customer_id INTEGER REFERENCES customers(id) ON DELETE CASCADE,
        total NUMERIC(10,2) NOT NULL CHECK (total >= 0), placed_at DATETIME)""",
    "CREATE INDEX orders_customer_idx ON orders (customer_id)",
    'CREATE TABLE "MixedCase" ("Id" INTEGER PRIMARY KEY, "Display Name" TEXT, "select" TEXT)',
    'CREATE TABLE "order" (id INTEGER PRIMARY KEY, "group" TEXT)',
    "CREATE TABLE secrets (id INTEGER PRIMARY KEY, pin TEXT)",
    "CREATE VIEW eu_customers AS SELECT id, name, region FROM customers WHERE region = 'EU'",
]

CUSTOMERS = [
    {
        "id": 1,
        "name": "Ada",
        "email": "ada@example.com",
        "region": "EU",
        "balance": "100.50",
        "secret": "s1",
        "created_at": "2024-01-02 10:00:00",
        "birthday": "1990-05-01",
        "active": True,
        "score": 1.5,
    },
    {
        "id": 2,
        "name": "Bob",
        "email": "bob@example.com",
        "region": "US",
        "balance": "20.00",
        "secret": "s2",
        "created_at": "2024-02-03 11:00:00",
        "birthday": "1985-07-12",
        "active": False,
        "score": 2.5,
    },
    {
        "id": 3,
        "name": "Chloé",
        "email": "chloe@example.com",
        "region": "EU",
        "balance": "0.00",
        "secret": "s3",
        "created_at": "2024-03-04 12:00:00",
        "birthday": None,
        "active": True,
        "score": 3.5,
    },
    {
        "id": 4,
        "name": "Dan O'Neil",
        "email": None,
        "region": "APAC",
        "balance": "75.25",
        "secret": "s4",
        "created_at": "2024-04-05 13:00:00",
        "birthday": "2000-01-01",
        "active": True,
        "score": None,
    },
    {
        "id": 5,
        "name": "Eve",
        "email": "eve@example.com",
        "region": "EU",
        "balance": "5.00",
        "secret": "s5",
        "created_at": "2024-05-06 14:00:00",
        "birthday": "1999-12-31",
        "active": False,
        "score": 5.0,
    },
]
ORDERS = [
    {"id": 1, "customer_id": 1, "total": "10.00", "placed_at": "2024-06-01 09:00:00"},
    {"id": 2, "customer_id": 1, "total": "15.50", "placed_at": "2024-06-02 09:00:00"},
    {"id": 3, "customer_id": 2, "total": "99.99", "placed_at": "2024-06-03 09:00:00"},
    {"id": 4, "customer_id": 5, "total": "1.00", "placed_at": "2024-06-04 09:00:00"},
]
DATA_TABLES = ["orders", "customers", "MixedCase", "order", "secrets"]


def _seed(conn: sa.Connection, engine: str) -> None:
    meta = sa.MetaData()
    customers = sa.Table("customers", meta, *[sa.Column(c) for c in CUSTOMERS[0]])
    orders = sa.Table("orders", meta, *[sa.Column(c) for c in ORDERS[0]])
    mixed = sa.Table("MixedCase", meta, sa.Column("Id"), sa.Column("Display Name"), sa.Column("select"))
    order = sa.Table("order", meta, sa.Column("id"), sa.Column("group"))
    secrets = sa.Table("secrets", meta, sa.Column("id"), sa.Column("pin"))
    for table in (orders, customers, mixed, order, secrets):
        conn.execute(table.delete())
    if engine == "postgresql":
        conn.execute(sa.text("DELETE FROM sales.invoices"))
        conn.execute(sa.text("INSERT INTO sales.invoices (id, amount, region) VALUES (1, 10.5, 'EU'), (2, 20, 'US')"))
    rows = [dict(r) for r in CUSTOMERS]
    if engine == "postgresql":
        for r in rows:
            r["created_at"] = r["created_at"] + "+00"
    conn.execute(customers.insert(), rows)
    conn.execute(orders.insert(), ORDERS)
    conn.execute(
        mixed.insert(),
        [{"Id": 1, "Display Name": "One", "select": "x"}, {"Id": 2, "Display Name": "Two", "select": "y"}],
    )
    conn.execute(order.insert(), [{"id": 1, "group": "a"}, {"id": 2, "group": "b"}])
    conn.execute(secrets.insert(), [{"id": 1, "pin": "1234"}, {"id": 2, "pin": "9999"}])
    if engine == "postgresql":
        conn.execute(sa.text("SELECT setval('customers_id_seq', 100), setval('orders_id_seq', 100)"))
        conn.execute(
            sa.text(
                "UPDATE customers SET tags = ARRAY['vip','beta'], profile = '{\"tier\": \"gold\", \"n\": [1, 2]}', "
                "ref = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', avatar = '\\x0102ff', wake = '07:30:00', "
                "session_len = interval '1 day 2 hours 3 minutes 4.5 seconds', mood = 'happy' WHERE id = 1"
            )
        )
    elif engine == "mysql":
        conn.execute(
            sa.text(
                'UPDATE customers SET profile = \'{"tier": "gold", "n": [1, 2]}\', '
                "ref = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', avatar = X'0102ff', wake = '07:30:00', mood = 'happy' "
                "WHERE id = 1"
            )
        )
    else:
        conn.execute(
            sa.text(
                'UPDATE customers SET profile = \'{"tier": "gold", "n": [1, 2]}\', '
                "ref = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', avatar = X'0102ff', wake = '07:30:00', mood = 'happy' "
                "WHERE id = 1"
            )
        )


def data_checksum(service: Service) -> list:
    """Every row of every data table, to prove that nothing changed."""
    engine = _checksum_engine(customer_url(service))
    out = []
    with engine.connect() as conn:
        tables = list(DATA_TABLES) + (["sales.invoices"] if service.engine == "postgresql" else [])
        for name in tables:
            schema, _, table = name.rpartition(".")
            t = sa.table(table, schema=schema or None)
            rows = conn.execute(sa.select(sa.text("*")).select_from(t)).all()
            out.append((name, sorted(repr(tuple(r)) for r in rows)))
        if service.engine == "postgresql":
            out.append(("schema", conn.execute(sa.text("SELECT count(*) FROM pg_tables")).scalar()))
    return out


_checksum_engines: dict[str, sa.Engine] = {}


def _checksum_engine(url: str) -> sa.Engine:
    if url not in _checksum_engines:
        _checksum_engines[url] = sa.create_engine(url, pool_size=1, max_overflow=0)
    return _checksum_engines[url]


def _dispose_checksum_engines(fragment: str) -> None:
    for url in [u for u in _checksum_engines if fragment in u]:
        _checksum_engines.pop(url).dispose()


def customer_url(service: Service) -> str:
    if service.engine == "sqlite":
        return f"sqlite:///{service.database}"
    if service.engine == "mysql":
        return f"mysql+pymysql://root@127.0.0.1:3306/{service.database}"
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{service.database}"


@pytest.fixture(scope="module")
def pg_database():
    name = f"nectar_rt_pg_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in PG_SCHEMA:
            conn.execute(sa.text(statement))
    engine.dispose()
    yield name
    _dispose_checksum_engines(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def my_database():
    name = f"nectar_rt_my_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(MY_ADMIN_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:3306/{name}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in MY_SCHEMA:
            conn.execute(sa.text(statement))
    engine.dispose()
    yield name
    _dispose_checksum_engines(name)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture(scope="module")
def sqlite_database(tmp_path_factory):
    path = tmp_path_factory.mktemp("customer") / "shop.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in SQLITE_SCHEMA:
            conn.execute(sa.text(statement))
    engine.dispose()
    return str(path)


_schema_memo: dict[str, dict] = {}


def _make_service(org, engine: str, database: str, *, name: str | None = None) -> Service:
    fields = {
        "postgresql": {"host": "127.0.0.1", "port": 5432, "username": "postgres"},
        "mysql": {"host": "127.0.0.1", "port": 3306, "username": "root"},
        "sqlite": {},
    }[engine]
    service = Service.objects.create(
        organization=org, name=name or f"{engine} shop", engine=engine, database=database, **fields
    )
    seed_engine = sa.create_engine(customer_url(service), poolclass=sa.pool.NullPool)
    with seed_engine.begin() as conn:
        _seed(conn, engine)
    seed_engine.dispose()
    if database in _schema_memo:
        service.schema_cache = _schema_memo[database]
        Service.objects.filter(pk=service.pk).update(schema_cache=service.schema_cache)
    else:
        from roles.introspection import service_refresh_schema

        _schema_memo[database] = service_refresh_schema(service=service)
    return service


@pytest.fixture
def pg_service(org, pg_database):
    service = _make_service(org, "postgresql", pg_database)
    yield service
    service_engines_dispose(service=service)


@pytest.fixture
def my_service(org, my_database):
    service = _make_service(org, "mysql", my_database)
    yield service
    service_engines_dispose(service=service)


@pytest.fixture
def sqlite_service(org, sqlite_database):
    service = _make_service(org, "sqlite", sqlite_database)
    yield service
    service_engines_dispose(service=service)


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def service(request):
    return request.getfixturevalue(
        {"postgresql": "pg_service", "mysql": "my_service", "sqlite": "sqlite_service"}[request.param]
    )


@pytest.fixture
def make_role(org):
    counter = {"n": 0}

    def make(service: Service, permissions: list) -> Role:
        counter["n"] += 1
        return Role.objects.create(
            organization=org, service=service, name=f"role {counter['n']}", permissions=permissions
        )

    return make


def table_perm(name, actions=("SELECT", "INSERT", "UPDATE", "DELETE"), *, schema=None, kind="table", **extra):
    perm = {"objectName": name, "path": f"/{kind}/{name}", "actions": list(actions)}
    if schema:
        perm["schema"] = schema
    perm.update(extra)
    return perm
