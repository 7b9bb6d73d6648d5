"""An injection corpus in every string and identifier position; afterwards no data has changed."""

from __future__ import annotations

import pytest

from roles.executor import (
    ExecutorError,
    executor_call,
    executor_delete,
    executor_insert,
    executor_query,
    executor_run_sql,
    executor_update,
)
from tests.roles.conftest import data_checksum, table_perm

PAYLOADS = [
    "'; DROP TABLE customers; --",
    "' OR '1'='1",
    "1 OR 1=1",
    "1; DELETE FROM secrets",
    "Robert'); DROP TABLE customers;--",
    "' UNION SELECT pin FROM secrets --",
    '"; DELETE FROM secrets; --',
    "`; DROP TABLE secrets; #",
    "\\'; DROP TABLE customers; --",
    "%' OR 1=1 --",
    "admin'--",
    "'||pg_sleep(1)||'",
    "$$; DROP TABLE customers; $$",
    "COMMIT; DROP TABLE customers",
    "ROLLBACK; DELETE FROM secrets; COMMIT",
    "customers; DROP TABLE secrets",
    'customers" ; DROP TABLE secrets; --',
    "customers`; DROP TABLE secrets; --",
    "name FROM secrets --",
    "id) ; DELETE FROM customers; --",
    ":id",
    "%(id)s",
    "x\x00y",
    "ö' /*",
]
REFUSALS = {"unknown_object", "unknown_column", "invalid_argument", "forbidden", "invalid_sql"}


@pytest.fixture
def full_role(make_role):
    def make(service):
        perms = [table_perm("customers"), table_perm("orders", ["SELECT"])]
        if service.engine != "sqlite":
            perms.append(table_perm("add_numbers", ["EXECUTE"], kind="proc"))
        return make_role(service, perms)

    return make


def _refused_or_ran(call, *, sql_text: bool = False):
    """Run a call; an error must be a precise refusal (or, for hand-written SQL, the database's own error)."""
    try:
        return call()
    except ExecutorError as exc:
        allowed = REFUSALS | {"database_error"} if sql_text else REFUSALS
        assert exc.code in allowed, (exc.code, exc.message)
        return None


def test_payloads_as_filter_values_match_nothing_and_change_nothing(service, full_role):
    role = full_role(service)
    before = data_checksum(service)
    for payload in PAYLOADS:
        for filters in (
            {"name": payload},
            {"column": "name", "op": "like", "value": payload},
            {"column": "name", "op": "ilike", "value": payload},
            {"column": "name", "op": "in", "value": [payload, "Ada"]},
            {"column": "email", "op": "ne", "value": payload},
            {"or": [{"region": payload}, {"column": "name", "op": "gt", "value": payload}]},
            {"column": "id", "op": "eq", "value": payload},
            {"column": "created_at", "op": "lt", "value": payload},
        ):
            result = _refused_or_ran(lambda f=filters: executor_query(role=role, object_name="customers", filters=f))
            if result is not None and filters == {"name": payload}:
                assert result.rows == []
        _refused_or_ran(
            lambda p=payload: executor_update(
                role=role, object_name="customers", values={"name": "x"}, filters={"name": p}
            )
        )
        _refused_or_ran(lambda p=payload: executor_delete(role=role, object_name="customers", filters={"email": p}))
    assert data_checksum(service) == before


def test_payloads_in_every_identifier_position_are_refused(service, full_role):
    role = full_role(service)
    before = data_checksum(service)
    for payload in PAYLOADS:
        attempts = [
            lambda p=payload: executor_query(role=role, object_name=p),
            lambda p=payload: executor_query(role=role, object_name="customers", schema=p),
            lambda p=payload: executor_query(role=role, object_name="customers", columns=["id", p]),
            lambda p=payload: executor_query(role=role, object_name="customers", filters={p: 1}),
            lambda p=payload: executor_query(
                role=role, object_name="customers", filters={"column": p, "op": "eq", "value": 1}
            ),
            lambda p=payload: executor_query(
                role=role, object_name="customers", filters={"column": "id", "op": p, "value": 1}
            ),
            lambda p=payload: executor_query(role=role, object_name="customers", order_by=p),
            lambda p=payload: executor_query(
                role=role, object_name="customers", order_by=[{"column": "id", "direction": p}]
            ),
            lambda p=payload: executor_insert(role=role, object_name="customers", rows=[{"name": "x", p: "y"}]),
            lambda p=payload: executor_insert(role=role, object_name=p, rows=[{"name": "x"}]),
            lambda p=payload: executor_update(role=role, object_name="customers", values={p: "x"}, filters={"id": 1}),
            lambda p=payload: executor_update(role=role, object_name="customers", values={"name": "x"}, filters={p: 1}),
            lambda p=payload: executor_delete(role=role, object_name=p, filters={"id": 1}),
            lambda p=payload: executor_delete(role=role, object_name="customers", filters={"or": [{p: 1}]}),
            lambda p=payload: executor_call(role=role, object_name=p, parameters={}),
            lambda p=payload: executor_call(role=role, object_name="add_numbers", parameters={p: 1, "a": 1, "b": 1}),
            lambda p=payload: executor_run_sql(role=role, sql="SELECT id FROM customers WHERE id = :id", params={p: 1}),
        ]
        for attempt in attempts:
            with pytest.raises(ExecutorError) as err:
                attempt()
            assert err.value.code in REFUSALS, (payload, err.value.code, err.value.message)
    assert data_checksum(service) == before


def test_payloads_as_bound_sql_parameters_and_inside_sql_text_change_nothing(service, full_role):
    role = full_role(service)
    before = data_checksum(service)
    for payload in PAYLOADS:
        result = _refused_or_ran(
            lambda p=payload: executor_run_sql(
                role=role, sql="SELECT id FROM customers WHERE name = :n", params={"n": p}
            )
        )
        assert result is None or result.rows == []
        quoted = payload.replace("'", "''")
        _refused_or_ran(
            lambda q=quoted: executor_run_sql(role=role, sql=f"SELECT id FROM customers WHERE name = '{q}'", params={}),
            sql_text=True,
        )
        for sql in (
            f"SELECT id FROM customers WHERE name = '{payload}'",
            f"SELECT id FROM {payload}",
            f"SELECT {payload} FROM customers",
            f"SELECT id FROM customers ORDER BY {payload}",
        ):
            _refused_or_ran(lambda s=sql: executor_run_sql(role=role, sql=s, params={}), sql_text=True)
    assert data_checksum(service) == before


def test_payloads_written_as_values_are_stored_verbatim_and_touch_nothing_else(service, full_role):
    role = full_role(service)
    before = {name: rows for name, rows in data_checksum(service) if name != "customers"}
    stored = [p for p in PAYLOADS if "\x00" not in p]
    executor_insert(role=role, object_name="customers", rows=[{"name": p, "region": "EU"} for p in stored])
    names = [
        r["name"]
        for r in executor_query(
            role=role, object_name="customers", filters={"column": "id", "op": "gt", "value": 5}, order_by="id"
        ).rows
    ]
    assert names == stored
    executor_update(role=role, object_name="customers", values={"secret": PAYLOADS[0]}, filters={"id": 1})
    assert executor_query(role=role, object_name="customers", filters={"id": 1}).rows[0]["secret"] == PAYLOADS[0]
    with pytest.raises(ExecutorError) as err:
        executor_insert(role=role, object_name="customers", rows=[{"name": "x\x00y"}])
    assert err.value.code == "invalid_argument"
    after = {name: rows for name, rows in data_checksum(service) if name != "customers"}
    assert after == before


# The three ways a denied column once got through the SQL checker (issue 12): an unqualified
# HAVING, an ORDER BY name shadowed by a select alias, and JOIN ... USING.
DENIED_COLUMN_BYPASSES = [
    "SELECT id FROM customers GROUP BY id HAVING max(secret) LIKE :p",
    "SELECT name AS secret FROM customers ORDER BY CASE WHEN secret LIKE :p THEN 0 ELSE 1 END",
    "SELECT o.id FROM orders o JOIN customers c USING (secret)",
    "SELECT o.id FROM orders o JOIN customers c USING (id, secret)",
    "SELECT id FROM customers ORDER BY secret",
    "SELECT row_number() OVER (PARTITION BY secret ORDER BY id) AS n FROM customers",
    "SELECT o.id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND secret = :p)",
]


@pytest.mark.parametrize("sql", DENIED_COLUMN_BYPASSES)
def test_denied_column_bypasses_are_refused_and_change_nothing(service, make_role, sql):
    role = make_role(
        service, [table_perm("customers", ["SELECT"], columns={"deny": ["secret"]}), table_perm("orders", ["SELECT"])]
    )
    before = data_checksum(service)
    with pytest.raises(ExecutorError) as refused:
        executor_run_sql(role=role, sql=sql, params={"p": "s%"} if ":p" in sql else {})
    assert refused.value.code == "forbidden", refused.value.message
    assert data_checksum(service) == before
