"""Read-only SQL of generated endpoints: the sqlglot allow-list, grants through joins and CTEs, binds."""

from __future__ import annotations

import pytest

from roles.executor import ExecutorError, executor_run_sql, sql_check, sql_explain_cost
from tests.roles.conftest import data_checksum, table_perm


@pytest.fixture
def reader(make_role):
    def make(service, **customer_extra):
        return make_role(
            service,
            [
                table_perm("customers", ["SELECT"], **customer_extra),
                table_perm("orders", ["SELECT"]),
                table_perm("MixedCase", ["SELECT"]),
                table_perm("eu_customers", ["SELECT"], kind="view"),
            ],
        )

    return make


def test_a_join_with_a_cte_and_named_binds_runs_read_only(service, reader):
    role = reader(service)
    sql = """
        WITH big AS (SELECT customer_id, SUM(total) AS spent FROM orders GROUP BY customer_id)
        SELECT c.id, c.name, b.spent FROM customers c JOIN big b ON b.customer_id = c.id
        WHERE c.region = :region AND b.spent > :minimum ORDER BY c.id
    """
    result = executor_run_sql(role=role, sql=sql, params={"region": "EU", "minimum": 2})
    assert result.columns == ["id", "name", "spent"]
    assert [(r["id"], r["name"]) for r in result.rows] == [(1, "Ada")]
    assert result.rows[0]["spent"] in ("25.50", 25.5)


def test_quoted_mixed_case_names_and_views_resolve(service, reader):
    role = reader(service)
    q = {"mysql": "`"}.get(service.engine, '"')
    result = executor_run_sql(
        role=role, sql=f"SELECT {q}Display Name{q} FROM {q}MixedCase{q} WHERE {q}Id{q} = :id", params={"id": 2}
    )
    assert result.rows == [{"Display Name": "Two"}]
    assert executor_run_sql(role=role, sql="SELECT count(*) AS n FROM eu_customers", params={}).rows == [{"n": 3}]


def test_string_literals_with_colons_are_not_taken_for_binds(service, reader):
    role = reader(service)
    result = executor_run_sql(role=role, sql="SELECT 'a:b' AS x, name FROM customers WHERE id = :id", params={"id": 1})
    assert result.rows == [{"x": "a:b", "name": "Ada"}]


def test_the_row_cap_truncates_and_says_so(service, reader, settings):
    settings.QUERY_ROW_CAP = 2
    result = executor_run_sql(role=reader(service), sql="SELECT id FROM customers ORDER BY id", params={})
    assert [r["id"] for r in result.rows] == [1, 2] and result.truncated is True


def test_row_filter_applies_inside_generated_sql_including_subqueries(service, reader):
    role = reader(service, rowFilter={"region": "EU"})
    rows = executor_run_sql(role=role, sql="SELECT id FROM customers ORDER BY id", params={}).rows
    assert [r["id"] for r in rows] == [1, 3, 5]
    nested = executor_run_sql(
        role=role,
        sql="SELECT o.id FROM orders o WHERE o.customer_id IN (SELECT id FROM customers WHERE region <> :r) "
        "ORDER BY o.id",
        params={"r": "XX"},
    )
    assert [r["id"] for r in nested.rows] == [1, 2, 4]


@pytest.mark.parametrize(
    "sql,code",
    [
        ("SELECT * FROM customers", "forbidden"),
        ("SELECT c.* FROM customers c", "forbidden"),
        ("SELECT secret FROM customers", "forbidden"),
        ("SELECT c.secret FROM customers c", "forbidden"),
        ("SELECT id FROM customers WHERE secret = 's1'", "forbidden"),
        ("SELECT (SELECT c.secret FROM orders o LIMIT 1) FROM customers c", "forbidden"),
        ("WITH x AS (SELECT secret FROM customers) SELECT * FROM x", "forbidden"),
    ],
)
def test_column_restrictions_hold_in_generated_sql(service, reader, sql, code):
    role = reader(service, columns={"deny": ["secret"]})
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(role=role, sql=sql, params={})
    assert err.value.code == code


def test_whole_row_references_to_restricted_tables_are_refused(pg_service, reader):
    role = reader(pg_service, columns={"deny": ["secret"]})
    for sql in ("SELECT row_to_json(c) FROM customers c", "SELECT to_jsonb(c.*) FROM customers c"):
        with pytest.raises(ExecutorError) as err:
            executor_run_sql(role=role, sql=sql, params={})
        assert err.value.code in ("forbidden", "invalid_sql")
    ok = executor_run_sql(role=role, sql="SELECT count(*) AS n FROM customers", params={})
    assert ok.rows == [{"n": 5}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM secrets",
        "SELECT c.id FROM customers c JOIN secrets s ON s.id = c.id",
        "SELECT id FROM customers WHERE id IN (SELECT id FROM secrets)",
        "WITH s AS (SELECT pin FROM secrets) SELECT * FROM s",
        "SELECT id FROM customers UNION SELECT id FROM secrets",
        "SELECT * FROM (WITH secrets AS (SELECT 1 AS id) SELECT id FROM secrets) a, secrets",
    ],
)
def test_ungranted_objects_are_refused_through_joins_subqueries_ctes_and_unions(service, reader, sql):
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(role=reader(service), sql=sql, params={})
    assert err.value.code == "forbidden"


def test_a_cte_named_like_an_ungranted_table_is_not_the_table(service, reader):
    result = executor_run_sql(
        role=reader(service), sql="WITH secrets AS (SELECT 7 AS pin) SELECT pin FROM secrets", params={}
    )
    assert result.rows == [{"pin": 7}]


@pytest.mark.parametrize(
    "sql,code",
    [
        ("SELECT 1; DELETE FROM customers", "invalid_sql"),
        ("DELETE FROM customers WHERE id = 1", "invalid_sql"),
        ("UPDATE customers SET name = 'x'", "invalid_sql"),
        ("INSERT INTO customers (name) VALUES ('x')", "invalid_sql"),
        ("DROP TABLE customers", "invalid_sql"),
        ("COMMIT", "invalid_sql"),
        ("SELECT 1; COMMIT; DROP TABLE customers", "invalid_sql"),
        ("SELECT id FROM customers FOR UPDATE", "invalid_sql"),
        ("SELECT id INTO new_table FROM customers", "invalid_sql"),
        ("WITH d AS (DELETE FROM customers RETURNING id) SELECT id FROM d", "invalid_sql"),
        ("SELECT id FROM customers WHERE id = ?", "invalid_sql"),
        ("SELEC id FROM customers", "invalid_sql"),
        ("", "invalid_sql"),
    ],
)
def test_writes_stacked_statements_and_transaction_tricks_are_refused(service, reader, sql, code):
    before = data_checksum(service)
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(role=reader(service), sql=sql, params={})
    assert err.value.code == code
    assert data_checksum(service) == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_sleep(1)",
        "SELECT pg_catalog.pg_sleep(1)",
        "SELECT nextval('customers_id_seq')",
        "SELECT set_config('statement_timeout', '0', false)",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT dblink('host=x', 'DELETE FROM customers')",
        "SELECT wipe_secrets()",
        "SELECT public.wipe_secrets()",
        "SELECT id FROM customers WHERE id = (SELECT 1 FROM pg_sleep(5))",
        "SELECT usename FROM pg_catalog.pg_user",
        "SELECT table_name FROM information_schema.tables",
    ],
)
def test_side_effecting_and_ungranted_functions_and_catalogs_are_refused_on_postgresql(pg_service, reader, sql):
    before = data_checksum(pg_service)
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(role=reader(pg_service), sql=sql, params={})
    assert err.value.code in ("forbidden", "unknown_object")
    assert data_checksum(pg_service) == before


@pytest.mark.parametrize(
    "sql", ["SELECT sleep(1)", "SELECT benchmark(1000, md5('x'))", "SELECT load_file('/etc/passwd')", "SELECT @a := 1"]
)
def test_side_effecting_functions_and_variables_are_refused_on_mariadb(my_service, reader, sql):
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(role=reader(my_service), sql=sql, params={})
    assert err.value.code in ("forbidden", "invalid_sql")


def test_granted_functions_may_be_called_from_sql(pg_service, make_role):
    role = make_role(pg_service, [table_perm("add_numbers", ["EXECUTE"], kind="proc")])
    assert executor_run_sql(role=role, sql="SELECT add_numbers(:a, 2) AS n", params={"a": 40}).rows == [{"n": 42}]


def test_params_must_match_the_binds_exactly(service, reader):
    role = reader(service)
    sql = "SELECT id FROM customers WHERE region = :region"
    for params, fragment in [
        ({}, "Missing"),
        ({"region": "EU", "extra": 1}, "Unknown"),
        ({"region": ["EU"]}, "string"),
    ]:
        with pytest.raises(ExecutorError) as err:
            executor_run_sql(role=role, sql=sql, params=params)
        assert err.value.code == "invalid_argument" and fragment in err.value.message
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(role=role, sql="SELECT id FROM customers WHERE id = :nectar_rf_0", params={"nectar_rf_0": 1})
    assert err.value.code == "invalid_sql"


def test_sql_check_reports_binds_and_objects_and_quotes_identifiers(pg_service, reader):
    checked = sql_check(
        role=reader(pg_service),
        sql="SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = :id",
        params={"id": 1},
    )
    assert checked.bind_names == ("id",)
    assert set(checked.objects) == {("public", "customers"), ("public", "orders")}
    assert '"public"."customers"' in checked.sql and ":id" in checked.sql


def test_explain_cost_is_a_positive_estimate_on_postgresql_and_zero_on_sqlite(pg_service, sqlite_service, reader):
    sql = "SELECT id FROM customers WHERE region = :r"
    assert sql_explain_cost(role=reader(pg_service), sql=sql, params={"r": "EU"}) > 0
    assert sql_explain_cost(role=reader(sqlite_service), sql=sql, params={"r": "EU"}) == 0.0


def test_a_granted_function_that_writes_cannot_write_from_read_only_sql(pg_service, make_role):
    role = make_role(pg_service, [table_perm("wipe_secrets", ["EXECUTE"], kind="proc")])
    before = data_checksum(pg_service)
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(role=role, sql="SELECT wipe_secrets()", params={})
    assert err.value.code == "forbidden"
    assert data_checksum(pg_service) == before


def test_a_slow_query_is_stopped_by_the_statement_timeout(org, pg_database, make_role, settings):
    from tests.roles.conftest import _make_service

    settings.CONNECTOR_STATEMENT_TIMEOUT_MS = 200
    service = _make_service(org, "postgresql", pg_database, name="slow")
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(
            role=role, sql="SELECT count(*) FROM generate_series(1, 1000000000) AS g(n) WHERE n > :x", params={"x": 0}
        )
    assert err.value.code == "timeout" and err.value.retryable


def test_a_slow_query_is_stopped_by_the_statement_timeout_on_mariadb(org, my_database, make_role, settings):
    from tests.roles.conftest import _make_service

    settings.CONNECTOR_STATEMENT_TIMEOUT_MS = 200
    service = _make_service(org, "mysql", my_database, name="slow")
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    with pytest.raises(ExecutorError) as err:
        executor_run_sql(
            role=role,
            # Five customers joined with themselves twelve times: 244 million rows to count.
            sql="SELECT count(*) FROM " + ", ".join(f"customers c{i}" for i in range(12)) + " WHERE c0.id > :x",
            params={"x": 0},
        )
    assert err.value.code == "timeout" and err.value.retryable


def test_typed_date_binds_compare_as_dates_on_every_engine(service, reader):
    import datetime as dt

    role = reader(service)
    sql = "SELECT id FROM customers WHERE birthday >= :since ORDER BY id"
    by_text = executor_run_sql(role=role, sql=sql, params={"since": "1985-01-01"})
    by_date = executor_run_sql(role=role, sql=sql, params={"since": dt.date(1985, 1, 1)})
    assert by_date.rows == by_text.rows and by_date.rows
