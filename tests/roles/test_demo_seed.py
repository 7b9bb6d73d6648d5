"""The demo retail database: deterministic data, SQLite and PostgreSQL builds, and the seed_demo command."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import override_settings

from roles.demo import (
    DEMO_FUNCTIONS,
    DEMO_PROCEDURES,
    DEMO_SEED,
    DEMO_TABLES,
    DEMO_VIEWS,
    DemoBuildError,
    demo_build_postgres,
    demo_build_sqlite,
    demo_generate,
    demo_schema_ddl,
)
from roles.demo.location import demo_database_location, demo_location_from_url
from roles.demo.platform import demo_eu_support_permissions, demo_sales_analyst_permissions
from roles.models import Membership, Organization, Role, Service

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
ANCHOR = date(2025, 3, 14)
SMALL = 0.02


def _drop_pg_database(name: str) -> None:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def demo_pg_url():
    """A uniquely named, not yet existing database on the machine's PostgreSQL 15; dropped afterwards."""
    name = f"nectar_demo_test_{uuid.uuid4().hex[:10]}"
    yield f"{PG_SERVER}/{name}"
    _drop_pg_database(name)


@pytest.fixture(scope="module")
def demo_pg_built():
    """One small PostgreSQL demo database shared by the read-mostly tests of this module."""
    name = f"nectar_demo_test_{uuid.uuid4().hex[:10]}"
    url = f"{PG_SERVER}/{name}"
    result = demo_build_postgres(url=url, scale=SMALL)
    yield url, result
    _drop_pg_database(name)


@pytest.fixture(scope="module")
def demo_sqlite_file(tmp_path_factory):
    return demo_build_sqlite(path=tmp_path_factory.mktemp("demo") / "demo.sqlite3", scale=SMALL)


def _pg_digest(url: str) -> dict[str, str]:
    """An md5 over every row of every demo table, in key order."""
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t").fetchone()[0]
            for table in DEMO_TABLES
            if table != "demo_metadata"
        }


# --- the generator ---------------------------------------------------------------------------


def test_the_same_seed_and_anchor_always_generate_the_same_rows():
    first = demo_generate(seed=DEMO_SEED, scale=SMALL, anchor=ANCHOR)
    second = demo_generate(seed=DEMO_SEED, scale=SMALL, anchor=ANCHOR)
    other_seed = demo_generate(seed=DEMO_SEED + 1, scale=SMALL, anchor=ANCHOR)

    assert first.checksum() == second.checksum()
    assert first.tables["orders"].rows[:50] == second.tables["orders"].rows[:50]
    assert other_seed.checksum() != first.checksum()


def test_generation_does_not_depend_on_the_process_hash_seed():
    import os
    import subprocess
    import sys

    from django.conf import settings

    script = (
        "import datetime; from roles.demo import demo_generate; "
        f"print(demo_generate(scale={SMALL}, anchor=datetime.date(2025, 3, 14)).checksum())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert outputs == {demo_generate(scale=SMALL, anchor=ANCHOR).checksum()}


def test_generated_rows_are_consistent_business_data():
    data = demo_generate(seed=DEMO_SEED, scale=SMALL, anchor=ANCHOR)
    anchor = datetime.combine(ANCHOR, datetime.min.time(), tzinfo=UTC)
    orders = {row[0]: row for row in data.tables["orders"].rows}
    customers = {row[0]: row for row in data.tables["customers"].rows}

    items_total: dict[int, Decimal] = {}
    for item in data.tables["order_items"].rows:
        items_total[item[1]] = items_total.get(item[1], Decimal(0)) + item[6]
        assert item[6] == item[5] * item[4]
    for order in orders.values():
        order_id, customer_id, order_date = order[0], order[1], order[2]
        subtotal, discount, shipping, tax, total = order[8:13]
        assert subtotal == items_total[order_id]
        assert total == subtotal - discount + shipping + tax
        assert anchor - timedelta(days=366) <= order_date <= anchor
        assert order_date >= customers[customer_id][10]  # not before the customer joined
        assert order[5] == customers[customer_id][7]  # the order's region is the customer's
    for event in data.tables["activity_events"].rows:
        assert anchor - timedelta(days=366) <= event[5] <= anchor
    # Dates are spread over the whole year, up to the anchor.
    assert min(o[2] for o in orders.values()) < anchor - timedelta(days=300)
    assert max(o[2] for o in orders.values()) > anchor - timedelta(days=3)


def test_a_scale_outside_the_allowed_range_is_refused():
    with pytest.raises(ValueError, match="scale must be between"):
        demo_generate(scale=0, anchor=ANCHOR)
    with pytest.raises(ValueError, match="scale must be"):
        demo_generate(scale="big", anchor=ANCHOR)


# --- SQLite ----------------------------------------------------------------------------------


def test_the_sqlite_build_has_every_table_and_view_in_realistic_proportions(demo_sqlite_file):
    conn = sqlite3.connect(demo_sqlite_file)
    objects = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')").fetchall())
    counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in DEMO_TABLES}
    metadata = dict(conn.execute("SELECT key, value FROM demo_metadata").fetchall())
    fk_violations = conn.execute("PRAGMA foreign_key_check").fetchall()
    conn.close()

    assert {name for name, kind in objects.items() if kind == "table"} == set(DEMO_TABLES)
    assert {name for name, kind in objects.items() if kind == "view"} == set(DEMO_VIEWS)
    assert counts["customers"] == 240
    assert counts["accounts"] == counts["customers"]
    assert counts["orders"] == 10 * counts["customers"]
    assert 2 * counts["orders"] <= counts["order_items"] <= 3 * counts["orders"]
    assert 0.9 * counts["orders"] <= counts["payments"] <= 1.2 * counts["orders"]
    assert counts["activity_events"] > counts["orders"]
    assert counts["support_tickets"] > 0
    assert fk_violations == []
    assert metadata["seed"] == str(DEMO_SEED)
    assert metadata["scale"] == "0.02"


def test_the_business_questions_have_answers_on_sqlite(demo_sqlite_file):
    conn = sqlite3.connect(demo_sqlite_file)
    eu_regulars = conn.execute(
        """SELECT c.customer_id FROM customers c JOIN orders o ON o.customer_id = c.customer_id
           WHERE c.region = 'EU' GROUP BY c.customer_id HAVING count(*) > 5"""
    ).fetchall()
    dormant = conn.execute(
        """SELECT count(*) FROM customers c WHERE NOT EXISTS (
               SELECT 1 FROM activity_events e
               WHERE e.customer_id = c.customer_id AND e.occurred_at >= datetime('now', '-90 days'))"""
    ).fetchone()[0]
    recent = conn.execute("SELECT count(*) FROM orders WHERE order_date >= datetime('now', '-90 days')").fetchone()[0]
    months = conn.execute("SELECT count(DISTINCT month) FROM monthly_revenue").fetchone()[0]
    top_value = conn.execute(
        "SELECT customer_id, lifetime_value FROM customer_lifetime_value ORDER BY lifetime_value DESC LIMIT 1"
    ).fetchone()
    order_with_items = conn.execute(
        """SELECT o.order_id, count(i.order_item_id) FROM orders o JOIN order_items i ON i.order_id = o.order_id
           WHERE o.order_id = 1 GROUP BY o.order_id"""
    ).fetchone()
    conn.close()

    assert eu_regulars
    assert 0 < dormant < 240
    assert recent > 0
    assert months in (12, 13)
    assert top_value[1] > 0
    assert order_with_items[1] >= 1


def test_building_sqlite_again_keeps_the_current_file_and_a_new_scale_rebuilds_it(tmp_path):
    path = tmp_path / "demo.sqlite3"
    demo_build_sqlite(path=path, scale=SMALL, anchor=ANCHOR)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO activity_events (customer_id, event_type, channel, occurred_at) "
                 "VALUES (1, 'login', 'web', '2025-03-13 10:00:00')")  # fmt: skip
    conn.commit()
    conn.close()

    demo_build_sqlite(path=path, scale=SMALL, anchor=ANCHOR)  # current: left alone, the extra row stays
    with sqlite3.connect(path) as conn:
        kept = conn.execute("SELECT count(*) FROM activity_events").fetchone()[0]
    demo_build_sqlite(path=path, scale=0.01, anchor=ANCHOR)
    with sqlite3.connect(path) as conn:
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        scale = conn.execute("SELECT value FROM demo_metadata WHERE key = 'scale'").fetchone()[0]

    assert kept == 4001
    assert customers == 120
    assert scale == "0.01"
    assert [p.name for p in tmp_path.iterdir()] == ["demo.sqlite3"]


def test_the_sqlite_ddl_has_no_routines_or_types():
    statements = " ".join(demo_schema_ddl("sqlite").statements).upper()
    assert "CREATE FUNCTION" not in statements
    assert "CREATE PROCEDURE" not in statements
    assert "CREATE TYPE" not in statements
    with pytest.raises(ValueError, match="engine must be"):
        demo_schema_ddl("oracle")


# --- PostgreSQL ------------------------------------------------------------------------------


def test_the_postgres_build_creates_tables_views_routines_and_an_enum(demo_pg_built):
    url, result = demo_pg_built
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        views = {r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
        routines = dict(
            conn.execute(
                "SELECT proname, prokind FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public'"
            ).fetchall()
        )
        enum_values = [r[0] for r in conn.execute("SELECT unnest(enum_range(NULL::order_status))::text").fetchall()]
        foreign_keys = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
        ).fetchone()[0]
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in DEMO_TABLES}

    assert result["created"] is True
    assert tables == set(DEMO_TABLES)
    assert views == set(DEMO_VIEWS)
    assert {name: routines.get(name) for name in DEMO_FUNCTIONS} == dict.fromkeys(DEMO_FUNCTIONS, "f")
    assert {name: routines.get(name) for name in DEMO_PROCEDURES} == dict.fromkeys(DEMO_PROCEDURES, "p")
    assert enum_values == ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
    assert foreign_keys == 8
    assert {t: counts[t] for t in result["counts"]} == result["counts"]


def test_the_postgres_views_answer_business_questions(demo_pg_built):
    url, _ = demo_pg_built
    with psycopg.connect(url) as conn:
        months = conn.execute("SELECT count(DISTINCT month) FROM monthly_revenue").fetchone()[0]
        regions = {r[0] for r in conn.execute("SELECT DISTINCT region FROM monthly_revenue")}
        top_products = conn.execute(
            """SELECT p.name, sum(i.line_total) FROM order_items i JOIN orders o USING (order_id)
               JOIN products p USING (product_id)
               WHERE o.order_date >= now() - interval '90 days' AND o.status IN ('paid', 'shipped', 'delivered')
               GROUP BY p.name ORDER BY 2 DESC LIMIT 10"""
        ).fetchall()
        lifetime = conn.execute("SELECT sum(lifetime_value) FROM customer_lifetime_value").fetchone()[0]
        revenue = conn.execute("SELECT sum(revenue) FROM monthly_revenue").fetchone()[0]
        sold = conn.execute("SELECT sum(units_sold) FROM product_sales").fetchone()[0]

    assert months in (12, 13)
    assert regions == {"EU", "UK", "NA", "APAC", "LATAM"}
    assert len(top_products) == 10
    assert lifetime == revenue  # both count paid, shipped and delivered orders
    assert sold > 0


def test_the_postgres_functions_and_procedure_work(demo_pg_url):
    demo_build_postgres(url=demo_pg_url, scale=SMALL)
    with psycopg.connect(demo_pg_url) as conn:
        customer_id = conn.execute(
            "SELECT customer_id FROM orders GROUP BY customer_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        since = conn.execute("SELECT * FROM customer_orders_since(%s, current_date - 400)", [customer_id]).fetchall()
        all_orders = conn.execute("SELECT count(*) FROM orders WHERE customer_id = %s", [customer_id]).fetchone()[0]
        tier = conn.execute("SELECT apply_loyalty_tier(%s)", [customer_id]).fetchone()[0]
        stored_tier = conn.execute("SELECT tier FROM accounts WHERE customer_id = %s", [customer_id]).fetchone()[0]
        ticket_id = conn.execute("SELECT open_ticket(%s, 'Parcel never arrived', 'high')", [customer_id]).fetchone()[0]
        ticket = conn.execute(
            "SELECT status, priority::text, region FROM support_tickets WHERE ticket_id = %s", [ticket_id]
        ).fetchone()
        region = conn.execute("SELECT region FROM customers WHERE customer_id = %s", [customer_id]).fetchone()[0]
        conn.execute("CALL close_resolved_tickets(0)")
        still_resolved = conn.execute("SELECT count(*) FROM support_tickets WHERE status = 'resolved'").fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE orders SET total_amount = total_amount + 1 WHERE order_id = 1")
        conn.rollback()
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("UPDATE orders SET status = 'lost' WHERE order_id = 1")

    assert len(since) == all_orders
    assert [row[1] for row in since] == sorted((row[1] for row in since), reverse=True)
    assert tier in ("bronze", "silver", "gold", "platinum")
    assert stored_tier == tier
    assert ticket == ("open", "high", region)
    assert still_resolved == 0


def test_building_postgres_again_changes_nothing(demo_pg_url):
    first = demo_build_postgres(url=demo_pg_url, scale=SMALL, anchor=ANCHOR)
    before = _pg_digest(demo_pg_url)
    again = demo_build_postgres(url=demo_pg_url, scale=SMALL, anchor=ANCHOR)
    after = _pg_digest(demo_pg_url)
    rebuilt = demo_build_postgres(url=demo_pg_url, scale=SMALL, anchor=ANCHOR, force=True)
    after_rebuild = _pg_digest(demo_pg_url)

    assert first["created"] is True
    assert again["created"] is False
    assert after == before
    assert again["counts"] == first["counts"] == demo_generate(scale=SMALL, anchor=ANCHOR).counts
    assert again["anchor_date"] == ANCHOR.isoformat()
    assert rebuilt["created"] is True
    assert after_rebuild == before  # a clean rebuild, not rows added twice


# --- seed_demo ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_creates_the_demo_organization_logins_service_and_roles_once(demo_pg_url, tmp_path):
    with override_settings(DEMO_DATABASE_URL=demo_pg_url, DATA_DIR=tmp_path):
        call_command("seed_demo", "--scale", str(SMALL))
        logins = (tmp_path / "demo_logins.txt").read_text()
        admin_hash = get_user_model().objects.get(username="admin").password
        call_command("seed_demo", "--scale", str(SMALL))

    organization = Organization.objects.get(slug="demo")
    admin = get_user_model().objects.get(username="admin")
    analyst = get_user_model().objects.get(username="analyst")
    service = Service.objects.get(organization=organization)
    roles = {role.name: role for role in Role.objects.filter(organization=organization)}
    passwords = dict(line.split(" (")[0].split(" / ") for line in logins.splitlines())

    assert organization.name == "Demo Retail"
    assert admin.is_superuser and admin.is_staff
    assert not analyst.is_superuser
    assert dict(Membership.objects.filter(organization=organization).values_list("user__username", "role")) == {
        "admin": "owner",
        "analyst": "member",
    }
    assert "admin / " in logins and "(admin, owner of Demo Retail)" in logins
    assert authenticate(username="admin", password=passwords["admin"]) == admin
    assert authenticate(username="analyst", password=passwords["analyst"]) == analyst
    assert admin.password == admin_hash  # the second run kept the password
    assert (tmp_path / "demo_logins.txt").read_text() == logins
    assert (service.engine, service.host, service.port, service.database, service.username) == (
        "postgresql",
        "127.0.0.1",
        5432,
        demo_pg_url.rsplit("/", 1)[1],
        "postgres",
    )
    assert set(roles) == {"Sales analyst", "EU support"}
    assert Service.objects.filter(organization=organization).count() == 1
    assert Organization.objects.filter(slug="demo").count() == 1

    sales = {grant["objectName"]: grant for grant in roles["Sales analyst"].permissions}
    assert sales["customers"]["columns"] == {"deny": ["phone"]}
    assert sales["customer_lifetime_value"]["path"] == "/view/customer_lifetime_value"
    assert sales["customer_orders_since"] == {
        "objectName": "customer_orders_since",
        "schema": "public",
        "path": "/proc/customer_orders_since",
        "actions": ["EXECUTE"],
    }
    assert "demo_metadata" not in sales
    assert all("rowFilter" not in grant for grant in sales.values())
    support = {grant["objectName"]: grant for grant in roles["EU support"].permissions}
    assert support["customers"]["rowFilter"] == {"region": "EU"}
    assert support["support_tickets"]["actions"] == ["SELECT", "INSERT", "UPDATE"]


@pytest.mark.django_db
def test_seed_demo_refuses_a_bad_scale_and_changes_nothing(tmp_path):
    from django.core.management.base import CommandError

    with override_settings(DATA_DIR=tmp_path), pytest.raises(CommandError, match="--scale"):
        call_command("seed_demo", "--scale", "0")
    assert not Organization.objects.filter(slug="demo").exists()
    assert not (tmp_path / "demo_logins.txt").exists()


@pytest.mark.django_db
def test_seed_demo_refuses_a_demo_database_url_without_a_database_name(tmp_path):
    from django.core.management.base import CommandError

    with (
        override_settings(DEMO_DATABASE_URL=f"{PG_SERVER}/", DATA_DIR=tmp_path),
        pytest.raises(CommandError, match="must name a database"),
    ):
        call_command("seed_demo", "--scale", str(SMALL))
    assert not Organization.objects.filter(slug="demo").exists()


def test_an_unreachable_demo_server_is_a_clear_retryable_error():
    with pytest.raises(DemoBuildError, match="cannot connect") as caught:
        demo_build_postgres(url="postgresql://postgres@127.0.0.1:1/nectar_demo_nowhere", scale=SMALL)
    assert caught.value.retryable is True
    assert "postgres@" not in str(caught.value)


def test_the_demo_database_defaults_to_nectar_demo_beside_the_platform_database():
    from django.conf import settings

    with override_settings(DEMO_DATABASE_URL=""):
        location = demo_database_location()
    platform = settings.DATABASES["default"]

    assert location.database == "nectar_demo"
    assert location.host == (platform["HOST"] or platform["OPTIONS"].get("host"))
    assert location.username == platform["USER"]
    assert location.url.startswith("postgresql://")


def test_a_demo_database_url_gives_the_service_its_connection_settings():
    location = demo_location_from_url("postgresql://shop:s%40cret@db.internal:6543/retail_demo")

    assert (location.host, location.port, location.database, location.username, location.password) == (
        "db.internal",
        6543,
        "retail_demo",
        "shop",
        "s@cret",
    )
    assert "s%40cret" in location.url
    assert "cret" not in repr(location)


# --- the demo Roles through the permission layer ------------------------------------------------


def _demo_service(org, engine: str, database: str) -> Service:
    fields = {"host": "127.0.0.1", "port": 5432, "username": "postgres"} if engine == "postgresql" else {}
    return Service.objects.create(organization=org, name=f"demo {engine}", engine=engine, database=database, **fields)


@pytest.mark.django_db
def test_the_demo_roles_are_valid_and_enforced_on_the_postgres_demo_database(org, demo_pg_built):
    from roles.executor import ExecutorError, executor_call, executor_query
    from roles.permissions import permissions_validate

    url, _ = demo_pg_built
    service = _demo_service(org, "postgresql", url.rsplit("/", 1)[1])
    sales = Role.objects.create(
        organization=org, service=service, name="Sales", permissions=demo_sales_analyst_permissions()
    )
    support = Role.objects.create(
        organization=org, service=service, name="Support", permissions=demo_eu_support_permissions()
    )

    assert permissions_validate(service=service, permissions=sales.permissions) == []
    assert permissions_validate(service=service, permissions=support.permissions) == []
    customers = executor_query(role=sales, object_name="customers", limit=5)
    assert "phone" not in customers.columns and "email" in customers.columns
    with pytest.raises(ExecutorError) as denied:
        executor_query(role=sales, object_name="customers", columns=["phone"])
    assert denied.value.code == "forbidden"
    delivered = executor_query(role=sales, object_name="orders", filters={"status": "delivered"}, limit=3)
    assert {row["status"] for row in delivered.rows} == {"delivered"}
    since = executor_call(
        role=sales, object_name="customer_orders_since", parameters={"p_customer_id": 1, "p_since": "2000-01-01"}
    )
    assert since.columns[:2] == ["order_id", "order_date"]
    eu = executor_query(role=support, object_name="customers", columns=["region"], limit=1000)
    assert {row["region"] for row in eu.rows} == {"EU"}


@pytest.mark.django_db
def test_the_sales_role_fits_a_sqlite_copy_of_the_demo_database(org, demo_sqlite_file):
    from roles.executor import executor_query
    from roles.permissions import permissions_validate

    service = _demo_service(org, "sqlite", str(demo_sqlite_file))
    permissions = demo_sales_analyst_permissions(schema="main", routines=False)
    role = Role.objects.create(organization=org, service=service, name="Sales", permissions=permissions)

    assert permissions_validate(service=service, permissions=permissions) == []
    revenue = executor_query(role=role, object_name="monthly_revenue", filters={"region": "EU"}, order_by="month")
    assert revenue.row_count >= 12
    assert revenue.rows[0]["month"] < revenue.rows[-1]["month"]


def test_a_build_older_than_max_age_days_is_regenerated_around_today(demo_pg_url):
    old = date.today() - timedelta(days=40)
    demo_build_postgres(url=demo_pg_url, scale=SMALL, anchor=old)
    kept = demo_build_postgres(url=demo_pg_url, scale=SMALL, max_age_days=60)
    refreshed = demo_build_postgres(url=demo_pg_url, scale=SMALL, max_age_days=30)

    assert kept["created"] is False and kept["anchor_date"] == old.isoformat()
    assert refreshed["created"] is True and refreshed["anchor_date"] == datetime.now(UTC).date().isoformat()
