"""Column-level checks are complete: a denied column is refused in every clause, on every engine.

Property-based (hypothesis): queries that use the denied column `phone` in each position (SELECT,
WHERE, GROUP BY, HAVING, ORDER BY with and without a shadowing alias, JOIN ON and USING, window
specs, subqueries correlated or not, CTEs, derived tables, unions, function arguments), written
in every way a reference can be written (bare, any letter case, quoted, qualified by alias or
table name), are all refused; the same queries with a granted column are all accepted.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roles.executor import ExecutorError
from roles.permissions import Grant
from roles.sqlcheck import check_sql

DEFAULT_SCHEMA = {"postgresql": "public", "mysql": "shop", "sqlite": "main"}
CUSTOMERS = ("customer_id", "first_name", "last_name", "region", "phone")
ORDERS = ("order_id", "customer_id", "total", "order_date")


def _object(engine, name, columns):
    return {
        "schema": DEFAULT_SCHEMA[engine],
        "name": name,
        "kind": "table",
        "columns": [{"name": c, "type": "text", "json_type": "string"} for c in columns],
    }


def _world(engine):
    customers, orders = _object(engine, "customers", CUSTOMERS), _object(engine, "orders", ORDERS)
    schema = {"engine": engine, "default_schema": DEFAULT_SCHEMA[engine], "objects": [customers, orders]}
    grants = [
        Grant(DEFAULT_SCHEMA[engine], "customers", "table", frozenset({"SELECT"}), CUSTOMERS[:-1], {}, customers),
        Grant(DEFAULT_SCHEMA[engine], "orders", "table", frozenset({"SELECT"}), None, {}, orders),
    ]
    return schema, grants


# {c} is a reference to a customers column written in one of the styles below; {a} the alias it may use.
TEMPLATES = [
    "SELECT {c} FROM customers {a}",
    "SELECT {a}.first_name FROM customers {a} WHERE {c} LIKE :p",
    "SELECT {a}.customer_id FROM customers {a} GROUP BY {a}.customer_id HAVING max({c}) LIKE :p",
    "SELECT {a}.region, count(*) AS n FROM customers {a} GROUP BY {a}.region HAVING count({c}) > 0",
    "SELECT {a}.first_name AS phone FROM customers {a} ORDER BY CASE WHEN {c} LIKE :p THEN 0 ELSE 1 END",
    "SELECT {a}.first_name AS phone FROM customers {a} ORDER BY {c}",
    "SELECT {a}.first_name FROM customers {a} ORDER BY length({c}) DESC",
    "SELECT {a}.first_name FROM customers {a} GROUP BY {a}.first_name, {c}",
    "SELECT o.total FROM orders o JOIN customers {a} ON {a}.customer_id = o.customer_id AND {c} = :p",
    "SELECT o.total FROM orders o LEFT JOIN customers {a} ON {c} = :p",
    "SELECT row_number() OVER (PARTITION BY {c} ORDER BY {a}.customer_id) AS n FROM customers {a}",
    "SELECT row_number() OVER (ORDER BY {c}) AS n FROM customers {a}",
    "SELECT {a}.first_name FROM customers {a} WHERE EXISTS "
    "(SELECT 1 FROM orders o WHERE o.customer_id = {a}.customer_id AND {c} = :p)",
    "SELECT (SELECT max({c}) FROM orders o WHERE o.customer_id = {a}.customer_id) AS x FROM customers {a}",
    "SELECT o.order_id FROM orders o WHERE o.customer_id IN (SELECT {a}.customer_id FROM customers {a} WHERE {c} = :p)",
    "WITH x AS (SELECT {c} AS v FROM customers {a}) SELECT v FROM x",
    "WITH x AS (SELECT {a}.customer_id FROM customers {a} WHERE {c} LIKE :p) SELECT customer_id FROM x",
    "SELECT d.v FROM (SELECT {c} AS v FROM customers {a}) AS d",
    "SELECT coalesce({c}, '') AS v FROM customers {a}",
    "SELECT lower({c}) AS v FROM customers {a}",
    "SELECT count(DISTINCT {c}) AS n FROM customers {a}",
    "SELECT {a}.first_name FROM customers {a} UNION SELECT {c} FROM customers {a}",
    "SELECT CASE WHEN {c} IS NULL THEN 'none' ELSE 'some' END AS v FROM customers {a}",
    "SELECT {a}.first_name FROM customers {a} WHERE {a}.customer_id > 0 AND ({c} = :p OR {c} IS NULL)",
]
STYLES = ["bare", "upper", "mixed", "quoted", "alias", "alias_upper", "quoted_alias"]


def _reference(engine: str, column: str, style: str, alias: str) -> str:
    quote = "`" if engine == "mysql" else '"'
    return {
        "bare": column,
        "upper": column.upper(),
        "mixed": column[:1].upper() + column[1:],
        "quoted": f"{quote}{column}{quote}",
        "alias": f"{alias}.{column}",
        "alias_upper": f"{alias}.{column.upper()}",
        "quoted_alias": f"{alias}.{quote}{column}{quote}",
    }[style]


def _query(template: str, engine: str, column: str, style: str, alias: str) -> tuple[str, dict]:
    sql = template.format(c=_reference(engine, column, style, alias), a=alias)
    return sql, ({"p": "x"} if ":p" in sql else {})


@settings(max_examples=600, deadline=None)
@given(
    engine=st.sampled_from(["postgresql", "mysql", "sqlite"]),
    template=st.sampled_from(TEMPLATES),
    style=st.sampled_from(STYLES),
    alias=st.sampled_from(["c", "cust", "customers"]),
)
def test_a_denied_column_is_refused_in_every_position_on_every_engine(engine, template, style, alias):
    schema, grants = _world(engine)
    sql, params = _query(template, engine, "phone", style, alias)
    with pytest.raises(ExecutorError) as refused:
        check_sql(sql=sql, params=params, schema=schema, grants=grants)
    assert refused.value.code in ("forbidden", "unknown_column"), (sql, refused.value.message)


@settings(max_examples=300, deadline=None)
@given(
    engine=st.sampled_from(["postgresql", "mysql", "sqlite"]),
    template=st.sampled_from(TEMPLATES),
    style=st.sampled_from(["bare", "alias", "quoted_alias", "quoted"]),
    alias=st.sampled_from(["c", "cust"]),
)
def test_the_same_queries_with_a_granted_column_are_accepted(engine, template, style, alias):
    if "AS phone" in template:
        template = template.replace("AS phone", "AS label")
    schema, grants = _world(engine)
    sql, params = _query(template, engine, "last_name", style, alias)
    checked = check_sql(sql=sql, params=params, schema=schema, grants=grants)
    assert checked.sql


@pytest.mark.parametrize("engine", ["postgresql", "mysql", "sqlite"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT o.total FROM orders o JOIN customers c USING (phone)",
        "SELECT o.total FROM orders o JOIN customers c USING (customer_id, phone)",
        "SELECT o.total FROM orders o NATURAL JOIN customers c",
        "SELECT c FROM customers c",
        "SELECT customers FROM customers",
    ],
)
def test_joins_using_a_denied_column_natural_joins_and_whole_rows_are_refused(engine, sql):
    schema, grants = _world(engine)
    with pytest.raises(ExecutorError) as refused:
        check_sql(sql=sql, params={}, schema=schema, grants=grants)
    assert refused.value.code == "forbidden", refused.value.message


@pytest.mark.parametrize("engine", ["postgresql", "mysql", "sqlite"])
def test_a_join_using_granted_columns_is_accepted(engine):
    schema, grants = _world(engine)
    checked = check_sql(
        sql="SELECT o.total, c.first_name FROM orders o JOIN customers c USING (customer_id)",
        params={},
        schema=schema,
        grants=grants,
    )
    assert "customer_id" in checked.sql
