"""The platform's checks catch wrong designs whoever wrote them: coverage, shapes, realization, meaning."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import interpretation_parse
from endpoints.verification.checks import design_verify
from endpoints.verification.coverage import coverage_check, shape_check
from endpoints.verification.findings import failed
from endpoints.verification.meaning import MeaningTester
from endpoints.verification.realization import realization_check
from tests.verification.retail_engines import retail_databases, schema_of


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    with retail_databases(tmp_path_factory.mktemp("retail")) as urls:
        engine = sa.create_engine(urls["postgres"])
        yield {"engine": engine, "catalog": Catalog(schema_of(urls["postgres"]))}
        engine.dispose()


class Rows:
    """Runs SQL on the test database (the Role's executor does this in the platform)."""

    row_cap = 1000

    def __init__(self, engine):
        self.engine = engine

    def rows(self, sql, params):
        params = {k: v for k, v in params.items() if f":{k}" in sql}
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]
        return rows[: self.row_cap], len(rows) > self.row_cap


C = {"alias": "c", "object": "customers", "phrase": "customers"}
O_OF_C = {"alias": "o", "object": "orders", "phrase": "orders", "join": {"to": "c", "on": [["customer_id", "id"]]}}


def _messages(findings):
    return [f.message for f in failed(findings)]


# --- coverage and shapes: the cases the issue names --------------------------------------------------------


def test_a_given_value_without_a_parameter_is_caught(retail):
    requirement = "customers of a given country"
    interp = interpretation_parse(
        {
            "entities": [{**C, "phrase": "customers"}],
            "select": [{"column": {"entity": "c", "column": "name"}}],
            "filters": [{"column": {"entity": "c", "column": "country"}, "value": "DE", "phrase": "a given country"}],
        }
    )
    messages = _messages(shape_check(requirement=requirement, interpretation=interp, catalog=retail["catalog"]))
    assert any("no parameter" in m for m in messages)


def test_a_year_with_no_date_filter_is_caught(retail):
    requirement = "total sales for each month of 2024"
    interp = interpretation_parse(
        {
            "entities": [{"alias": "o", "object": "orders", "phrase": "sales"}],
            "group_by": [
                {"column": {"entity": "o", "column": "order_date"}, "bucket": "month", "phrase": "each month"}
            ],
            "measures": [
                {"id": "sales", "func": "sum", "column": {"entity": "o", "column": "total"}, "phrase": "total"}
            ],
        }
    )
    coverage = coverage_check(requirement=requirement, interpretation=interp)
    shapes = shape_check(requirement=requirement, interpretation=interp, catalog=retail["catalog"])
    assert "nothing in the design accounts for '2024'" in _messages(coverage)
    assert any("names a year" in m for m in _messages(shapes))


def test_never_without_an_anti_join_is_caught(retail):
    requirement = "products that were never ordered"
    interp = interpretation_parse(
        {
            "entities": [{"alias": "p", "object": "products", "phrase": "products"}],
            "select": [{"column": {"entity": "p", "column": "name"}}],
            "assumptions": [{"text": "every product", "phrase": "never ordered"}],
        }
    )
    messages = _messages(shape_check(requirement=requirement, interpretation=interp, catalog=retail["catalog"]))
    assert any("'never' negates something" in m for m in messages)


def test_most_recent_without_a_date_ordering_is_caught(retail):
    requirement = "the three most recent orders"
    interp = interpretation_parse(
        {
            "entities": [{"alias": "o", "object": "orders", "phrase": "orders"}],
            "select": [{"column": {"entity": "o", "column": "id"}}],
            "order_by": [{"column": {"entity": "o", "column": "total"}, "direction": "desc", "phrase": "most recent"}],
            "limit": {"n": 3, "phrase": "three"},
        }
    )
    messages = _messages(shape_check(requirement=requirement, interpretation=interp, catalog=retail["catalog"]))
    assert any("order by date" in m for m in messages)


def test_each_month_without_that_grain_is_caught(retail):
    requirement = "revenue for each month"
    interp = interpretation_parse(
        {
            "entities": [{"alias": "o", "object": "orders", "phrase": "revenue"}],
            "measures": [
                {"id": "revenue", "func": "sum", "column": {"entity": "o", "column": "total"}, "phrase": "revenue"}
            ],
            "assumptions": [{"text": "one total", "phrase": "each month"}],
        }
    )
    messages = _messages(shape_check(requirement=requirement, interpretation=interp, catalog=retail["catalog"]))
    assert any("one row per month" in m for m in messages)


def test_names_of_people_need_first_and_last_name():
    schema = {
        "engine": "postgresql",
        "default_schema": "public",
        "objects": [
            {
                "schema": "public",
                "name": "staff",
                "kind": "table",
                "primary_key": ["staff_id"],
                "columns": [
                    {"name": "staff_id", "type": "INTEGER", "json_type": "integer"},
                    {"name": "first_name", "type": "TEXT", "json_type": "string"},
                    {"name": "last_name", "type": "TEXT", "json_type": "string"},
                ],
            }
        ],
    }
    interp = interpretation_parse(
        {
            "entities": [{"alias": "s", "object": "staff", "phrase": "staff"}],
            "select": [{"column": {"entity": "s", "column": "first_name"}, "phrase": "names"}],
        }
    )
    messages = _messages(shape_check(requirement="names of our staff", interpretation=interp, catalog=Catalog(schema)))
    assert any("first_name and last_name" in m for m in messages)


def test_a_phrase_the_requirement_does_not_contain_is_refused():
    interp = interpretation_parse({"entities": [{**C, "phrase": "clients in Spain"}]})
    messages = _messages(coverage_check(requirement="customers", interpretation=interp))
    assert any("does not say it" in m for m in messages)


def test_a_faithful_design_passes_every_static_check(retail):
    requirement = "Top 5 customers by revenue with their names, excluding cancelled orders"
    interp = interpretation_parse(
        {
            "entities": [C, O_OF_C],
            "group_by": [{"column": {"entity": "c", "column": "id"}}],
            "select": [{"column": {"entity": "c", "column": "name"}, "phrase": "names"}],
            "measures": [
                {"id": "revenue", "func": "sum", "column": {"entity": "o", "column": "total"}, "phrase": "revenue"}
            ],
            "filters": [
                {
                    "column": {"entity": "o", "column": "status"},
                    "op": "ne",
                    "value": "cancelled",
                    "phrase": "excluding cancelled",
                }
            ],
            "order_by": [{"measure": "revenue", "phrase": "Top 5"}],
            "limit": {"n": 5, "phrase": "Top 5"},
        }
    )
    sql = interpretation_compile(interp, catalog=retail["catalog"], dialect="postgres").sql
    findings = design_verify(
        requirement=requirement, interpretation=interp, sql=sql, catalog=retail["catalog"], dialect="postgres"
    )
    assert failed(findings) == []


# --- realization: SQL that does not do what the interpretation says ------------------------------------------

GIVEN_COUNTRY = {
    "entities": [C],
    "select": [{"column": {"entity": "c", "column": "id"}}, {"column": {"entity": "c", "column": "country"}}],
    "filters": [{"column": {"entity": "c", "column": "country"}, "param": "country", "phrase": "a given country"}],
    "parameters": [{"name": "country", "required": True, "phrase": "a given country"}],
}
NEVER_ORDERED = {
    "entities": [C],
    "select": [{"column": {"entity": "c", "column": "id"}}],
    "exists": [{"negated": True, "from": "c", "entities": [{**O_OF_C, "phrase": ""}], "phrase": "never ordered"}],
}
MONTHLY_LAST_YEAR = {
    "entities": [{"alias": "o", "object": "orders"}],
    "group_by": [{"column": {"entity": "o", "column": "order_date"}, "bucket": "month"}],
    "measures": [{"id": "sales", "func": "sum", "column": {"entity": "o", "column": "total"}}],
    "windows": [
        {
            "column": {"entity": "o", "column": "order_date"},
            "start": {"calendar": {"unit": "year", "offset": -1}},
            "end": {"calendar": {"unit": "year", "offset": 0}},
        }
    ],
}
RECENT = {
    "entities": [{"alias": "o", "object": "orders"}],
    "select": [{"column": {"entity": "o", "column": "id"}}, {"column": {"entity": "o", "column": "order_date"}}],
    "order_by": [{"column": {"entity": "o", "column": "order_date"}, "direction": "desc"}],
    "limit": {"n": 3},
}


@pytest.mark.parametrize(
    ("data", "sql", "expected"),
    [
        (GIVEN_COUNTRY, "SELECT id, country FROM customers ORDER BY id", "not used to filter"),
        (GIVEN_COUNTRY, "SELECT id, country, :country AS asked FROM customers", "not used to filter"),
        (NEVER_ORDERED, "SELECT c.id FROM customers c ORDER BY c.id", "anti-join"),
        (
            MONTHLY_LAST_YEAR,
            "SELECT to_char(order_date, 'YYYY-MM') AS month, SUM(total) AS sales FROM orders GROUP BY 1",
            "time window",
        ),
        (
            MONTHLY_LAST_YEAR,
            "SELECT SUM(total) AS sales FROM orders WHERE order_date >= '2025-01-01' AND order_date < '2026-01-01'",
            "one row per month",
        ),
        (RECENT, "SELECT id, order_date FROM orders ORDER BY total DESC LIMIT 3", "order by order_date"),
        (RECENT, "SELECT id, order_date FROM orders ORDER BY order_date DESC LIMIT 100", "3 rows"),
    ],
)
def test_sql_that_drops_an_element_of_the_interpretation_is_caught(retail, data, sql, expected):
    interp = interpretation_parse(data)
    findings = realization_check(sql=sql, dialect="postgres", interpretation=interp, catalog=retail["catalog"])
    assert any(expected in m for m in _messages(findings)), _messages(findings)


@pytest.mark.parametrize("data", [GIVEN_COUNTRY, NEVER_ORDERED, MONTHLY_LAST_YEAR, RECENT])
@pytest.mark.parametrize("shape", ["primary", "alternate"])
def test_the_platforms_own_sql_realizes_every_element(retail, data, shape):
    interp = interpretation_parse(data)
    sql = interpretation_compile(interp, catalog=retail["catalog"], dialect="postgres", shape=shape).sql
    assert (
        _messages(realization_check(sql=sql, dialect="postgres", interpretation=interp, catalog=retail["catalog"]))
        == []
    )


def test_hand_written_equivalents_are_accepted(retail):
    interp = interpretation_parse(NEVER_ORDERED)
    for sql in (
        "SELECT c.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NULL",
        "SELECT id FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)",
        "SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)",
    ):
        findings = realization_check(sql=sql, dialect="postgres", interpretation=interp, catalog=retail["catalog"])
        assert _messages(findings) == [], sql


# --- meaning on live data ------------------------------------------------------------------------------------


def _meaning(retail, data, sql=None):
    interp = interpretation_parse(data)
    compiled = interpretation_compile(interp, catalog=retail["catalog"], dialect="postgres")
    return MeaningTester(
        interpretation=interp,
        sql=sql or compiled.sql,
        parameters=compiled.parameters,
        catalog=retail["catalog"],
        dialect="postgres",
        runner=Rows(retail["engine"]),
    ).run()


TOP_CUSTOMERS = {
    "entities": [C, O_OF_C],
    "group_by": [{"column": {"entity": "c", "column": "id"}}],
    "measures": [{"id": "revenue", "func": "sum", "column": {"entity": "o", "column": "total"}}],
    "order_by": [{"measure": "revenue"}],
    "limit": {"n": 5},
}


def test_the_platforms_own_designs_pass_their_meaning_tests(retail):
    for data in (GIVEN_COUNTRY, NEVER_ORDERED, MONTHLY_LAST_YEAR, RECENT, TOP_CUSTOMERS):
        report = _meaning(retail, data)
        assert report.passed, [t.detail for t in report.tests if not t.passed]
        assert report.derived >= 1


def test_a_parameter_that_changes_nothing_fails_its_meaning_test(retail):
    report = _meaning(
        retail, GIVEN_COUNTRY, sql="SELECT c.id, c.country FROM customers c WHERE CAST(:country AS TEXT) IS NOT NULL"
    )
    failures = [t for t in report.tests if not t.passed]
    assert any(t.kind == "parameter" for t in failures)


def test_a_count_instead_of_a_sum_fails_the_recomputation(retail):
    wrong = (
        "SELECT c.id AS id, COUNT(*) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id "
        "GROUP BY c.id ORDER BY revenue DESC LIMIT 5"
    )
    report = _meaning(retail, TOP_CUSTOMERS, sql=wrong)
    assert {t.kind for t in report.tests if not t.passed} >= {"aggregate"}


def test_a_negation_that_lets_related_rows_through_fails(retail):
    report = _meaning(retail, NEVER_ORDERED, sql="SELECT c.id AS id FROM customers c ORDER BY c.id")
    assert {t.kind for t in report.tests if not t.passed} & {"negation", "formulation"}


def test_a_ranking_in_the_wrong_order_fails(retail):
    wrong = (
        "SELECT c.id AS id, SUM(o.total) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id "
        "GROUP BY c.id ORDER BY revenue ASC LIMIT 5"
    )
    report = _meaning(retail, TOP_CUSTOMERS, sql=wrong)
    assert {t.kind for t in report.tests if not t.passed} & {"order", "formulation"}


WITH_EMAIL = {
    "entities": [C],
    "select": GIVEN_COUNTRY["select"],
    "filters": [{"column": {"entity": "c", "column": "email"}, "op": "not_null"}],
}
WITHOUT_EMAIL = {
    "entities": [C],
    "select": GIVEN_COUNTRY["select"],
    "filters": [{"column": {"entity": "c", "column": "email"}, "op": "is_null"}],
}
NAMED_A = {
    "entities": [C],
    "select": GIVEN_COUNTRY["select"],
    "filters": [{"column": {"entity": "c", "column": "name"}, "op": "like", "value": "A%"}],
}


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize(
    ("data", "sql", "realized"),
    [
        # sqlglot keeps 'IS NOT NULL' (PostgreSQL) and 'NOT LIKE' (every dialect) as one negated node
        (WITH_EMAIL, "SELECT id, country FROM customers WHERE email IS NOT NULL", True),
        (WITHOUT_EMAIL, "SELECT id, country FROM customers WHERE email IS NOT NULL", False),
        (WITHOUT_EMAIL, "SELECT id, country FROM customers WHERE email IS NULL", True),
        (NAMED_A, "SELECT id, country FROM customers WHERE name NOT LIKE 'A%'", False),
        (NAMED_A, "SELECT id, country FROM customers WHERE name LIKE 'A%'", True),
        (
            NEVER_ORDERED,
            "SELECT c.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NOT NULL",
            False,
        ),
    ],
)
def test_a_negated_condition_never_realizes_its_opposite(retail, dialect, data, sql, realized):
    interp = interpretation_parse(data)
    findings = realization_check(sql=sql, dialect=dialect, interpretation=interp, catalog=retail["catalog"])
    assert (_messages(findings) == []) is realized, _messages(findings)
