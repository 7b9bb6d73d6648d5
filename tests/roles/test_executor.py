"""The executor against real PostgreSQL, MariaDB and SQLite: every action, operator and refusal."""

from __future__ import annotations

import pytest

from roles.executor import (
    ExecutorError,
    executor_call,
    executor_delete,
    executor_distinct,
    executor_insert,
    executor_query,
    executor_update,
)
from tests.roles.conftest import data_checksum, table_perm


def _ids(result):
    return [r["id"] for r in result.rows]


def test_query_returns_all_columns_json_safe_and_ordered(service, make_role):
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    result = executor_query(role=role, object_name="customers", order_by="id")
    assert result.row_count == 5 and _ids(result) == [1, 2, 3, 4, 5]
    ada = result.rows[0]
    assert ada["balance"] == "100.50"
    assert ada["birthday"] == "1990-05-01"
    assert ada["profile"] == {"tier": "gold", "n": [1, 2]}
    assert ada["avatar"] == "AQL/"
    assert ada["wake"] == "07:30:00"
    assert ada["active"] is True, "booleans stored as 0/1 come back as booleans"
    if service.engine == "postgresql":
        assert ada["created_at"] == "2024-01-02T10:00:00+00:00"
        assert ada["tags"] == ["vip", "beta"]
        assert ada["ref"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert ada["session_len"] == "P1DT2H3M4.5S"
        assert ada["mood"] == "happy"
    assert result.truncated is False and result.total is None


@pytest.mark.parametrize(
    "filters,expected",
    [
        ({"column": "region", "op": "eq", "value": "EU"}, [1, 3, 5]),
        ({"column": "region", "op": "ne", "value": "EU"}, [2, 4]),
        ({"column": "balance", "op": "lt", "value": "20"}, [3, 5]),
        ({"column": "balance", "op": "lte", "value": 20}, [2, 3, 5]),
        ({"column": "balance", "op": "gt", "value": "75.25"}, [1]),
        ({"column": "balance", "op": "gte", "value": "75.25"}, [1, 4]),
        ({"column": "id", "op": "in", "value": [2, 4, 99]}, [2, 4]),
        ({"column": "name", "op": "like", "value": "%b%"}, [2]),
        ({"column": "name", "op": "ilike", "value": "a%"}, [1]),
        ({"column": "email", "op": "is_null", "value": True}, [4]),
        ({"column": "birthday", "op": "is_null", "value": False}, [1, 2, 4, 5]),
        ({"column": "birthday", "op": "between", "value": ["1985-01-01", "1995-01-01"]}, [1, 2]),
        ({"column": "created_at", "op": "gte", "value": "2024-04-01T00:00:00"}, [4, 5]),
        ({"or": [{"column": "id", "op": "eq", "value": 1}, {"and": [{"region": "US"}, {"name": "Bob"}]}]}, [1, 2]),
        ([{"region": "EU"}, {"column": "score", "op": "gt", "value": 2}], [3, 5]),
        ({"region": "EU", "name": "Eve"}, [5]),
    ],
)
def test_each_filter_operator_selects_the_expected_rows(service, make_role, filters, expected):
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    result = executor_query(role=role, object_name="customers", filters=filters, order_by="id", columns=["id"])
    assert _ids(result) == expected
    assert result.columns == ["id"]


def test_query_limits_offsets_orders_descending_and_counts_the_total(service, make_role):
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    result = executor_query(
        role=role,
        object_name="customers",
        columns=["id", "name"],
        order_by=[{"column": "id", "direction": "desc"}],
        limit=2,
        offset=1,
        include_total=True,
    )
    assert _ids(result) == [4, 3]
    assert result.total == 5 and result.truncated is True


def test_query_clamps_the_limit_to_the_row_cap(service, make_role, settings):
    settings.QUERY_ROW_CAP = 3
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    result = executor_query(role=role, object_name="customers", limit=100, order_by="id")
    assert _ids(result) == [1, 2, 3] and result.truncated is True


def test_views_and_quoted_mixed_case_and_reserved_names_are_queryable(service, make_role):
    role = make_role(
        service,
        [
            table_perm("eu_customers", ["SELECT"], kind="view"),
            table_perm("MixedCase", ["SELECT"]),
            table_perm("order", ["SELECT", "UPDATE"]),
        ],
    )
    assert _ids(executor_query(role=role, object_name="eu_customers", order_by="id")) == [1, 3, 5]
    mixed = executor_query(role=role, object_name="MixedCase", filters={"Display Name": "Two"})
    assert mixed.rows == [{"Id": 2, "Display Name": "Two", "select": "y"}]
    changed = executor_update(role=role, object_name="order", values={"group": "z"}, filters={"id": 1})
    assert changed.row_count == 1
    assert executor_query(role=role, object_name="order", filters={"group": "z"}).rows == [{"id": 1, "group": "z"}]


def test_non_default_schema_tables_are_reached_by_schema(pg_service, make_role):
    role = make_role(pg_service, [table_perm("invoices", ["SELECT"], schema="sales")])
    result = executor_query(role=role, object_name="invoices", schema="sales", order_by="id")
    assert result.rows == [{"id": 1, "amount": "10.50", "region": "EU"}, {"id": 2, "amount": "20.00", "region": "US"}]
    with pytest.raises(ExecutorError) as err:
        executor_query(role=role, object_name="invoices", schema="public")
    assert err.value.code == "unknown_object"


def test_insert_writes_a_batch_and_returns_rows_where_supported(service, make_role):
    role = make_role(service, [table_perm("customers")])
    result = executor_insert(
        role=role,
        object_name="customers",
        rows=[
            {"name": "Finn", "region": "EU", "balance": "1.10", "birthday": "2001-02-03", "profile": {"a": 1}},
            {"name": "Gus", "region": "US", "active": False},
        ],
    )
    assert result.row_count == 2
    if service.engine in ("postgresql", "sqlite", "mysql"):
        assert [r["name"] for r in result.rows] == ["Finn", "Gus"]
        assert result.rows[0]["balance"] == "1.10"
    stored = executor_query(role=role, object_name="customers", filters={"name": "Finn"})
    assert stored.rows[0]["profile"] == {"a": 1} and stored.rows[0]["birthday"] == "2001-02-03"


def test_a_failing_row_rolls_back_the_whole_batch(service, make_role):
    role = make_role(service, [table_perm("orders")])
    before = data_checksum(service)
    with pytest.raises(ExecutorError) as err:
        executor_insert(
            role=role,
            object_name="orders",
            rows=[{"customer_id": 1, "total": "5.00"}, {"customer_id": 2, "total": "-1.00"}],
        )
    assert err.value.code == "constraint_violation"
    assert "rows[1]" in err.value.message
    assert data_checksum(service) == before


def test_a_wrongly_typed_value_is_refused_before_anything_is_written(service, make_role):
    role = make_role(service, [table_perm("customers")])
    before = data_checksum(service)
    for rows, field in [
        ([{"name": "ok"}, {"name": 42}], "rows[1].name"),
        ([{"name": "x", "balance": "lots"}], "rows[0].balance"),
        ([{"name": "x", "birthday": "31/12/2000"}], "rows[0].birthday"),
        ([{"name": None}], "rows[0].name"),
        ([{"name": "x", "id": "7"}], "rows[0].id"),
    ]:
        with pytest.raises(ExecutorError) as err:
            executor_insert(role=role, object_name="customers", rows=rows)
        assert err.value.code == "invalid_argument" and err.value.field == field
    with pytest.raises(ExecutorError) as err:
        executor_insert(role=role, object_name="customers", rows=[{"name": "x", "nope": 1}])
    assert err.value.code == "unknown_column"
    assert data_checksum(service) == before


def test_update_and_delete_change_only_the_filtered_rows(service, make_role):
    role = make_role(service, [table_perm("customers"), table_perm("orders")])
    updated = executor_update(role=role, object_name="customers", values={"balance": "1.00"}, filters={"region": "EU"})
    assert updated.row_count == 3
    balances = {r["id"]: r["balance"] for r in executor_query(role=role, object_name="customers").rows}
    assert balances == {1: "1.00", 2: "20.00", 3: "1.00", 4: "75.25", 5: "1.00"}
    deleted = executor_delete(role=role, object_name="orders", filters={"column": "total", "op": "lt", "value": 12})
    assert deleted.row_count == 2
    assert _ids(executor_query(role=role, object_name="orders", order_by="id")) == [2, 3]


def test_dry_run_writes_report_what_they_would_do_and_leave_nothing_behind(service, make_role):
    role = make_role(service, [table_perm("customers"), table_perm("orders")])
    before = data_checksum(service)
    inserted = executor_insert(
        role=role, object_name="customers", rows=[{"name": "Dora", "region": "EU"}], dry_run=True
    )
    updated = executor_update(
        role=role, object_name="customers", values={"balance": "1.00"}, filters={"region": "EU"}, dry_run=True
    )
    deleted = executor_delete(
        role=role, object_name="orders", filters={"column": "total", "op": "lt", "value": 12}, dry_run=True
    )
    assert (inserted.row_count, updated.row_count, deleted.row_count) == (1, 3, 2)
    assert data_checksum(service) == before


def test_update_and_delete_refuse_to_run_without_filters(service, make_role):
    role = make_role(service, [table_perm("customers")])
    before = data_checksum(service)
    for filters in (None, {}, []):
        with pytest.raises(ExecutorError) as err:
            executor_delete(role=role, object_name="customers", filters=filters)
        assert err.value.code == "invalid_argument" and err.value.field == "filters"
        with pytest.raises(ExecutorError):
            executor_update(role=role, object_name="customers", values={"name": "x"}, filters=filters)
    assert data_checksum(service) == before


@pytest.mark.parametrize("action", ["SELECT", "INSERT", "UPDATE", "DELETE"])
def test_every_ungranted_action_is_refused(service, make_role, action):
    granted = [a for a in ("SELECT", "INSERT", "UPDATE", "DELETE") if a != action]
    role = make_role(service, [table_perm("customers", granted)])
    before = data_checksum(service)
    calls = {
        "SELECT": lambda: executor_query(role=role, object_name="customers"),
        "INSERT": lambda: executor_insert(role=role, object_name="customers", rows=[{"name": "x"}]),
        "UPDATE": lambda: executor_update(role=role, object_name="customers", values={"name": "x"}, filters={"id": 1}),
        "DELETE": lambda: executor_delete(role=role, object_name="customers", filters={"id": 1}),
    }
    with pytest.raises(ExecutorError) as err:
        calls[action]()
    assert err.value.code == "forbidden" and action in err.value.message
    assert data_checksum(service) == before


def test_ungranted_and_unknown_objects_are_refused(service, make_role):
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    with pytest.raises(ExecutorError) as err:
        executor_query(role=role, object_name="secrets")
    assert err.value.code == "forbidden"
    with pytest.raises(ExecutorError) as err:
        executor_query(role=role, object_name="no_such_table")
    assert err.value.code == "unknown_object"
    with pytest.raises(ExecutorError) as err:
        executor_query(role=role, object_name="CUSTOMERS")
    assert err.value.code == "unknown_object"


def test_an_inactive_role_reads_nothing(service, make_role):
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    role.is_active = False
    role.save()
    with pytest.raises(ExecutorError) as err:
        executor_query(role=role, object_name="customers")
    assert err.value.code == "forbidden"


def test_column_allow_list_limits_reads_filters_ordering_and_writes(service, make_role):
    role = make_role(service, [table_perm("customers", columns={"allow": ["id", "name", "region"]})])
    result = executor_query(role=role, object_name="customers", order_by="id", limit=1)
    assert result.columns == ["id", "name", "region"] and set(result.rows[0]) == {"id", "name", "region"}
    for kwargs in (
        {"columns": ["id", "secret"]},
        {"filters": {"secret": "s1"}},
        {"order_by": "-secret"},
    ):
        with pytest.raises(ExecutorError) as err:
            executor_query(role=role, object_name="customers", **kwargs)
        assert err.value.code == "forbidden" and "secret" in err.value.message
    before = data_checksum(service)
    with pytest.raises(ExecutorError) as err:
        executor_update(role=role, object_name="customers", values={"secret": "x"}, filters={"id": 1})
    assert err.value.code == "forbidden"
    assert data_checksum(service) == before


def test_column_deny_list_hides_the_denied_columns(service, make_role):
    role = make_role(service, [table_perm("customers", ["SELECT"], columns={"deny": ["secret", "email"]})])
    row = executor_query(role=role, object_name="customers", limit=1).rows[0]
    assert "secret" not in row and "email" not in row and "name" in row


def test_row_filter_confines_reads_updates_deletes_and_inserts(service, make_role):
    role = make_role(service, [table_perm("customers", rowFilter={"region": "EU"})])
    assert _ids(executor_query(role=role, object_name="customers", order_by="id", include_total=True)) == [1, 3, 5]
    assert executor_query(role=role, object_name="customers", filters={"id": 2}).rows == []
    assert executor_query(role=role, object_name="customers", include_total=True).total == 3
    assert executor_update(role=role, object_name="customers", values={"name": "X"}, filters={"id": 2}).row_count == 0
    assert executor_delete(role=role, object_name="customers", filters={"id": 4}).row_count == 0
    inserted = executor_insert(role=role, object_name="customers", rows=[{"name": "Zed"}])
    assert inserted.row_count == 1
    zed = executor_query(role=role, object_name="customers", filters={"name": "Zed"}).rows
    assert zed and zed[0]["region"] == "EU"
    before = data_checksum(service)
    with pytest.raises(ExecutorError) as err:
        executor_insert(role=role, object_name="customers", rows=[{"name": "Yan", "region": "US"}])
    assert err.value.code == "forbidden"
    with pytest.raises(ExecutorError) as err:
        executor_update(role=role, object_name="customers", values={"region": "US"}, filters={"id": 1})
    assert err.value.code == "forbidden"
    assert data_checksum(service) == before


def test_distinct_values_come_most_frequent_first_and_say_whether_they_are_all(service, make_role):
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    # EU three times, then APAC and US once each (ties by value).
    every = executor_distinct(role=role, object_name="customers", column="region", limit=5)
    assert every == (["EU", "APAC", "US"], True)
    assert executor_distinct(role=role, object_name="customers", column="region", limit=1) == (["EU"], False)


def test_distinct_values_keep_the_row_filter_and_the_column_grants(service, make_role):
    confined = make_role(service, [table_perm("customers", rowFilter={"region": "EU"})])
    assert executor_distinct(role=confined, object_name="customers", column="region", limit=5) == (["EU"], True)
    narrow = make_role(service, [table_perm("customers", columns={"allow": ["id", "name"]})])
    with pytest.raises(ExecutorError) as err:
        executor_distinct(role=narrow, object_name="customers", column="region", limit=5)
    assert err.value.code == "forbidden"


def test_bad_filter_shapes_get_precise_errors(service, make_role):
    role = make_role(service, [table_perm("customers", ["SELECT"])])
    cases = [
        ({"column": "id", "op": "regex", "value": 1}, "invalid_argument"),
        ({"column": "nope", "op": "eq", "value": 1}, "unknown_column"),
        ({"column": "id", "op": "in", "value": []}, "invalid_argument"),
        ({"column": "id", "op": "between", "value": [1]}, "invalid_argument"),
        ({"column": "id", "op": "eq", "value": "1; DROP TABLE customers"}, "invalid_argument"),
        ({"column": "id", "op": "like", "value": "1%"}, "invalid_argument"),
        ({"column": "email", "op": "eq", "value": None}, "invalid_argument"),
        ({"or": []}, "invalid_argument"),
        ([{}], "invalid_argument"),  # an empty filter inside others: refused, not read as "no rows"
        ({"or": [{"region": "EU"}, {}]}, "invalid_argument"),
        ("region = 'EU'", "invalid_argument"),
    ]
    for filters, code in cases:
        with pytest.raises(ExecutorError) as err:
            executor_query(role=role, object_name="customers", filters=filters)
        assert err.value.code == code, filters
    with pytest.raises(ExecutorError) as err:
        executor_query(role=role, object_name="customers", limit=-1)
    assert err.value.field == "limit"


def test_postgresql_function_and_procedure_calls_take_named_typed_parameters(pg_service, make_role):
    role = make_role(
        pg_service,
        [
            table_perm("add_numbers", ["EXECUTE"], kind="proc"),
            table_perm("customers_in", ["EXECUTE"], kind="proc"),
            table_perm("bump_balance", ["EXECUTE"], kind="proc"),
        ],
    )
    assert executor_call(role=role, object_name="add_numbers", parameters={"a": 2, "b": 3}).rows == [{"add_numbers": 5}]
    assert executor_call(role=role, object_name="add_numbers", parameters={"a": 2}).rows == [{"add_numbers": 3}]
    listed = executor_call(role=role, object_name="customers_in", parameters={"p_region": "EU"})
    assert listed.columns == ["id", "name"] and [r["id"] for r in listed.rows] == [1, 3, 5]
    bumped = executor_call(role=role, object_name="bump_balance", parameters={"p_id": 2, "p_amount": "5.5"})
    assert bumped.rows == [{"new_balance": "25.50"}]
    for params, field in [({"a": "two"}, "parameters.a"), ({}, "parameters.a"), ({"a": 1, "zz": 2}, "parameters.zz")]:
        with pytest.raises(ExecutorError) as err:
            executor_call(role=role, object_name="add_numbers", parameters=params)
        assert err.value.code == "invalid_argument" and err.value.field == field


def test_mariadb_function_and_procedure_calls_return_results_and_out_parameters(my_service, make_role):
    role = make_role(
        my_service,
        [table_perm("add_numbers", ["EXECUTE"], kind="proc"), table_perm("bump_balance", ["EXECUTE"], kind="proc")],
    )
    assert executor_call(role=role, object_name="add_numbers", parameters={"a": 2, "b": 3}).rows == [{"result": 5}]
    bumped = executor_call(role=role, object_name="bump_balance", parameters={"p_id": 2, "p_amount": "5.50"})
    assert bumped.rows == [{"new_balance": "25.50"}]


def test_calling_an_ungranted_routine_or_a_table_is_refused(pg_service, make_role):
    role = make_role(
        pg_service, [table_perm("customers", ["SELECT"]), table_perm("add_numbers", ["EXECUTE"], kind="proc")]
    )
    before = data_checksum(pg_service)
    with pytest.raises(ExecutorError) as err:
        executor_call(role=role, object_name="wipe_secrets", parameters={})
    assert err.value.code == "forbidden"
    with pytest.raises(ExecutorError) as err:
        executor_call(role=role, object_name="customers", parameters={})
    assert err.value.code == "invalid_argument"
    assert data_checksum(pg_service) == before


def test_one_statement_per_query_shape_serves_every_value_and_page(service, make_role):
    from roles.executor import STATEMENTS
    from roles.permissions import role_grants

    role = make_role(service, [table_perm("customers", ["SELECT"], rowFilter={"region": "EU"})])
    shape = {"column": "id", "op": "in"}
    first = executor_query(role=role, object_name="customers", filters={**shape, "value": [1, 3]}, order_by="id")
    other = executor_query(role=role, object_name="customers", filters={**shape, "value": [3, 5]}, order_by="id")
    paged = executor_query(
        role=role, object_name="customers", filters={**shape, "value": [1, 5]}, order_by="id", limit=1, offset=1
    )
    outside = executor_query(role=role, object_name="customers", filters={**shape, "value": [2, 4]}, order_by="id")
    assert (_ids(first), _ids(other), _ids(paged), _ids(outside)) == ([1, 3], [3, 5], [5], [])
    grant = next(g for g in role_grants(role=role) if g.object_name == "customers")
    assert len(grant.__dict__[STATEMENTS]) == 1, "the same shape, values and pages: one statement"
    executor_query(role=role, object_name="customers", filters={**shape, "value": [1, 3, 5]}, order_by="-id")
    assert len(grant.__dict__[STATEMENTS]) == 2


def test_a_grant_is_copied_without_the_statements_built_for_it(service, make_role):
    import copy

    from roles.executor import STATEMENTS
    from roles.permissions import role_grants

    role = make_role(service, [table_perm("customers", ["SELECT"])])
    executor_query(role=role, object_name="customers", filters={"region": "EU"})
    grant = next(g for g in role_grants(role=role) if g.object_name == "customers")
    assert STATEMENTS in grant.__dict__
    copied = copy.deepcopy(grant)  # as pickling does: through __getstate__
    assert copied == grant and STATEMENTS not in copied.__dict__
