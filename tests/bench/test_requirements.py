"""The benchmark's requirements: enough of them, of every shape, each with a reference query that has that shape.

The shapes are checked on the reference's syntax tree (sqlglot), not taken from the labels: a
requirement labelled "having" whose reference has no HAVING fails here, and so does a parameter
that the reference never binds.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
import sqlglot
from sqlglot import exp

from bench.bench_accuracy import REQUIREMENT_FILES, Requirement, requirements_load
from bench.datasets import date_shift_for
from web.forms import EXAMPLES

UNSHIFTED = date_shift_for(mode="none", newest=date(2026, 12, 1))
NOW = {"currentdate", "currenttimestamp", "currenttime", "now", "datetrunc", "timestamptrunc", "datesub", "dateadd"}

# Issue 15's demo requirements and the spec's headline example: each must be in the demo set, verbatim.
QUOTED_DEMO = [
    "open high-priority tickets older than a week",
    "orders that were paid twice",
    "which sales channel brought in the most revenue last quarter",
    "gold and platinum accounts that are over their credit limit",
    "customers who signed up this year but never placed an order",
    "refunds by payment method last month",
    "support agents with the most unresolved tickets",
    "customers whose activity dropped in the last 90 days, with their lifetime spend",
    "calculate customer churn risk based on their last 90 days of activity",
]


def _load(database: str) -> list[Requirement]:
    return requirements_load(database, UNSHIFTED)


def _tree(item: Requirement) -> exp.Expression:
    return sqlglot.parse_one(item.sql["postgresql"], read="postgres")


def _binds(item: Requirement) -> set[str]:
    return set(re.findall(r"(?<![:\w]):([a-z_][a-z0-9_]*)", item.sql["postgresql"], re.I))


def _has_parameter(tree: exp.Expression, item: Requirement) -> bool:
    return bool(item.parameters) and _binds(item) == set(item.parameters)


def _has_time_window(tree: exp.Expression, item: Requirement) -> bool:
    """A comparison of a column with today's date (or a date literal or a date parameter)."""
    for predicate in tree.find_all(exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between):
        if not list(predicate.find_all(exp.Column)):
            continue
        names = {type(node).__name__.lower() for node in predicate.walk()}
        funcs = {f.sql_name().lower().replace("_", "") for f in predicate.find_all(exp.Func)}
        if names & NOW or funcs & NOW or re.search(r"\d{4}-\d{2}-\d{2}", predicate.sql()):
            return True
        if any(isinstance(node, exp.Placeholder) for node in predicate.walk()):
            return True
    return False


def _has_negation(tree: exp.Expression, item: Requirement) -> bool:
    for node in tree.find_all(exp.Not):
        if isinstance(node.this, (exp.Exists, exp.In)):
            return True
    if any(isinstance(node, exp.Except) for node in tree.walk()):
        return True
    left_joined = any(j.side and j.side.upper() == "LEFT" for j in tree.find_all(exp.Join))
    return left_joined and any(isinstance(n.expression, exp.Null) for n in tree.find_all(exp.Is))


def _has_ranking(tree: exp.Expression, item: Requirement) -> bool:
    return tree.args.get("order") is not None or any(isinstance(n, exp.Window) for n in tree.walk())


def _has_group_aggregate(tree: exp.Expression, item: Requirement) -> bool:
    return any(s.args.get("group") for s in tree.find_all(exp.Select)) and any(tree.find_all(exp.AggFunc))


def _has_having(tree: exp.Expression, item: Requirement) -> bool:
    return any(tree.find_all(exp.Having))


def _has_multi_hop(tree: exp.Expression, item: Requirement) -> bool:
    return len({t.name.lower() for t in tree.find_all(exp.Table)}) >= 3


def _has_self_reference(tree: exp.Expression, item: Requirement) -> bool:
    seen: dict[str, set[str]] = {}
    for table in tree.find_all(exp.Table):
        seen.setdefault(table.name.lower(), set()).add((table.alias_or_name or table.name).lower())
    return any(len(aliases) >= 2 for aliases in seen.values())


SHAPES = {
    "parameter": _has_parameter,
    "time-window": _has_time_window,
    "negation": _has_negation,
    "ranking": _has_ranking,
    "having": _has_having,
    "multi-hop": _has_multi_hop,
    "self-reference": _has_self_reference,
    "aggregate": _has_group_aggregate,
}
# Labels that promise the same thing as a checked shape.
LABELS = {"anti-join": "negation", "top-n": "ranking", "top-1": "ranking"}


def test_sakila_and_northwind_have_at_least_60_requirements_of_every_shape_with_references_of_that_shape():
    items = _load("sakila") + _load("northwind")
    assert len(items) >= 60
    found: dict[str, list[str]] = {shape: [] for shape in SHAPES}
    for item in items:
        tree = _tree(item)
        for label in item.shape:
            shape = LABELS.get(label, label)
            if shape in SHAPES and shape != "aggregate":
                assert SHAPES[shape](tree, item), f"{item.id} is labelled {label}, but its reference is not"
        for shape, check in SHAPES.items():
            if check(tree, item):
                found[shape].append(item.id)
    thin = {shape: ids for shape, ids in found.items() if len(ids) < 2}
    assert not thin, f"shapes with fewer than two requirements: {thin}"
    assert len(found["parameter"]) >= 8 and len(found["time-window"]) >= 8 and len(found["negation"]) >= 4


@pytest.mark.parametrize("database", ["sakila", "northwind", "demo"])
def test_every_requirement_binds_exactly_its_parameters_and_orders_by_columns_it_returns(database):
    for item in _load(database):
        assert item.text.strip() and item.sql.get("postgresql"), item.id
        assert set(item.sql) <= {"postgresql", "sqlite", "mysql"}, item.id
        for engine, sql in item.sql.items():
            binds = set(re.findall(r"(?<![:\w]):([a-z_][a-z0-9_]*)", sql, re.I))
            assert binds == set(item.parameters), f"{item.id} on {engine}: binds {binds}, parameters {item.parameters}"
        returned = {(e.alias_or_name or "").lower() for e in _tree(item).expressions if not isinstance(e, exp.Star)}
        missing = [c for c in item.ordered_by if c.lower() not in returned]
        assert not missing, f"{item.id}: ordered_by names {missing}, which the reference does not return"
        if item.ordered_by:
            assert _tree(item).args.get("order") is not None, f"{item.id}: ordered_by without an ORDER BY"


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def test_demo_has_at_least_40_requirements_including_the_quoted_ones_and_none_copied():
    items = _load("demo")
    assert len(items) >= 40
    texts = {_normal(i.text) for i in items}
    missing = [q for q in QUOTED_DEMO if _normal(q) not in texts]
    assert not missing, f"quoted requirements missing from the demo set: {missing}"
    pipeline = json.loads((REQUIREMENT_FILES["demo"].with_name("requirements_demo.json")).read_text())
    copied_from = {_normal(r["requirement"]) for r in pipeline["requirements"]} | {_normal(e) for e in EXAMPLES}
    copied = sorted(texts & copied_from)
    assert not copied, f"copied from the page's examples or bench_pipeline: {copied}"
    assert len(texts) == len(items), "two demo requirements say the same thing"
