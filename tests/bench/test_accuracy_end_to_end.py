"""Per shape of requirement, one Northwind requirement through the real pipeline on SQLite: never deployed wrong.

The requirements and their reference queries are the benchmark's own (bench/requirements_northwind.json);
each runs in a fresh organization set up as a user would (bench_accuracy.Workspace), is deployed by
its admin and called over HTTP with a Role key, exactly as `python -m bench.bench_accuracy` does.
"""

from __future__ import annotations

import pytest

from bench.bench_accuracy import References, Workspace, requirements_load, run_requirement
from bench.datasets import copy_database, dataset_drop, load_postgres, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


SHAPES = [
    "customers-in-country",  # a given X: a required parameter
    "orders-per-month-last-year",  # time window and monthly grain
    "customers-without-orders",  # negation (anti-join)
    "five-biggest-customers",  # ranking, top N
    "products-per-category",  # per-group aggregate
    "customers-more-than-20-orders",  # HAVING threshold ("more than N")
    "customers-reordering-a-product",  # more than once
    "employees-in-region",  # three foreign keys away
    "employees-and-managers",  # self-reference
    "employee-sales-last-quarter",  # people's names
    "lines-of-order",  # lookup by key
]


@pytest.fixture(scope="module")
def northwind_sqlite(tmp_path_factory):
    source = load_postgres(dataset="northwind", database=unique_name("test_e2e_northwind"), progress=False)
    copy = copy_database(
        source_url=source.url,
        engine="sqlite",
        database="northwind",
        fingerprint="test",
        dataset="northwind",
        shift=source.shift,
        directory=tmp_path_factory.mktemp("northwind"),
        progress=False,
    )
    yield copy
    dataset_drop(copy)
    dataset_drop(source)


@pytest.mark.parametrize("requirement_id", SHAPES)
def test_requirement_is_answered_correctly_or_declined_never_wrong(requirement_id, northwind_sqlite):
    item = next(i for i in requirements_load("northwind", northwind_sqlite.shift) if i.id == requirement_id)
    references = References(northwind_sqlite)
    sql, _derived = item.reference_sql("sqlite")
    assert references.rows(sql, item.parameters), "the reference must not be empty"
    workspace = Workspace(copy=northwind_sqlite, label="e2e")
    try:
        outcome = run_requirement(
            workspace,
            item,
            lambda: references.rows(sql, item.parameters),
            database="northwind",
            engine="sqlite",
        )
    finally:
        workspace.close()
        references.close()
    assert outcome.outcome in ("correct", "declined"), f"{outcome.outcome}: {outcome.why}\n{outcome.sql}"
    if outcome.outcome == "declined":
        assert outcome.why, "a declined run says why"
