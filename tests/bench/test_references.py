"""The bench's reference check: a reference that cannot tell right from wrong is a bench error, never a baseline.

Before any run every reference runs on every engine; it must return rows, and each engine's rows
must be PostgreSQL's. Checked here on Northwind in PostgreSQL 15 and a SQLite copy (unique names,
dropped at the end).
"""

from __future__ import annotations

import pytest

from bench.bench_accuracy import References, Requirement, reference_result
from bench.datasets import copy_database, dataset_drop, load_postgres, unique_name

TABLES = ["customers", "employees", "shippers", "orders"]
IN_COUNTRY = "SELECT customer_id, company_name FROM customers WHERE country = :country"


@pytest.fixture(scope="module")
def northwind(tmp_path_factory):
    source = load_postgres(dataset="northwind", database=unique_name("test_refs_northwind"), progress=False)
    copy = copy_database(
        source_url=source.url,
        engine="sqlite",
        database="northwind",
        fingerprint="test",
        dataset="northwind",
        shift=source.shift,
        tables=TABLES,
        directory=tmp_path_factory.mktemp("northwind"),
        progress=False,
    )
    baseline, sqlite = References(source), References(copy)
    yield baseline, sqlite
    baseline.close()
    sqlite.close()
    dataset_drop(copy)
    dataset_drop(source)


def _item(sql: dict, *, parameters: dict | None = None, ordered_by: list[str] | None = None) -> Requirement:
    return Requirement(
        id="t", text="t", shape=[], parameters=parameters or {}, ordered_by=ordered_by or [], sql=sql
    )  # fmt: skip


def test_a_reference_with_the_same_rows_on_both_engines_is_usable(northwind):
    baseline, sqlite = northwind
    item = _item({"postgresql": IN_COUNTRY}, parameters={"country": "Germany"})
    rows, why = reference_result(item, "postgresql", baseline, None)
    assert why == "" and len(rows) == 11
    rows, why = reference_result(item, "sqlite", sqlite, baseline)  # sqlglot's translation
    assert why == "" and len(rows) == 11


def test_an_empty_reference_is_an_error(northwind):
    baseline, sqlite = northwind
    item = _item({"postgresql": IN_COUNTRY}, parameters={"country": "Atlantis"})
    for engine, references, against in (("postgresql", baseline, None), ("sqlite", sqlite, baseline)):
        rows, why = reference_result(item, engine, references, against)
        assert rows is None and "returns no rows" in why


def test_an_engine_variant_that_answers_differently_from_postgresql_is_an_error(northwind):
    baseline, sqlite = northwind
    fewer = IN_COUNTRY + " AND city <> 'Berlin'"
    item = _item({"postgresql": IN_COUNTRY, "sqlite": fewer}, parameters={"country": "Germany"})
    rows, why = reference_result(item, "sqlite", sqlite, baseline)
    assert rows is None and "the reference on sqlite differs from PostgreSQL's: 10 rows instead of 11" in why
    other_values = "SELECT customer_id, city AS company_name FROM customers WHERE country = :country"
    item = _item({"postgresql": IN_COUNTRY, "sqlite": other_values}, parameters={"country": "Germany"})
    rows, why = reference_result(item, "sqlite", sqlite, baseline)
    assert rows is None and "differs from PostgreSQL's" in why and "company_name" in why
    renamed = "SELECT customer_id, company_name AS name FROM customers WHERE country = :country"
    item = _item({"postgresql": IN_COUNTRY, "sqlite": renamed}, parameters={"country": "Germany"})
    rows, why = reference_result(item, "sqlite", sqlite, baseline)
    assert rows is None and "names its columns differently: company_name" in why


def test_a_reference_that_fails_on_an_engine_or_orders_by_a_column_it_does_not_return_is_an_error(northwind):
    baseline, sqlite = northwind
    item = _item({"postgresql": IN_COUNTRY, "sqlite": "SELECT nope FROM customers"}, parameters={"country": "UK"})
    rows, why = reference_result(item, "sqlite", sqlite, baseline)
    assert rows is None and why.startswith("the reference fails on sqlite: ")
    item = _item({"postgresql": "SELECT customer_id FROM customers ORDER BY company_name"}, ordered_by=["company_name"])
    rows, why = reference_result(item, "postgresql", baseline, None)
    assert rows is None and "ordered_by names 'company_name'" in why
