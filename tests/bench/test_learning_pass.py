"""The bench's second pass after ratings: a design rated down is never offered again (issue 13, item 6).

The offline planner answers the bench's requirements right or declines them, so its second pass has
nothing to rate down. Here a scripted design source does what a model can do: for "Customers in a
given country" it filters on the customer's city instead of the country. That design verifies
(every phrase is covered, the parameter is bound in WHERE), passes its tests and is deployed, and
its rows are wrong. The bench rates it down with a comment and asks again, through the same code as
`python -m bench.bench_accuracy` (run_requirement, learning_pass), on Northwind in SQLite.
"""

from __future__ import annotations

import pytest

from agents.models import AgentExecution, AgentStatus
from agents.providers.offline import OfflineProvider, _schema
from bench.bench_accuracy import (
    References,
    Workspace,
    _offered_designs,
    learning_pass,
    requirements_load,
    run_requirement,
)
from bench.datasets import copy_database, dataset_drop, load_postgres, unique_name
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import design_fingerprint, interpretation_parse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REQUIREMENT = "customers-in-country"


class CityForCountry(OfflineProvider):
    """A design source that answers "customers in a given country" by filtering on the city: it verifies, and is wrong.

    `learns`: told that its design was rated not helpful, it writes the right design (the country
    column) instead; otherwise it offers the same wrong design every time. Every other agent is the
    offline provider's.
    """

    def __init__(self, *, learns: bool):
        super().__init__()
        self.learns = learns

    def _architect(self, context, messages, tool_names):
        feedback = " ".join(context.get("feedback") or [])
        column = "country" if self.learns and "rated not helpful" in feedback else "city"
        schema = _schema(context) or {}
        table = next(o for o in schema.get("objects") or [] if o["name"].lower() == "customers")
        name = f"{table['schema']}.{table['name']}" if table.get("schema") else table["name"]
        interpretation = {
            "entities": [{"alias": "c", "object": name, "phrase": "Customers"}],
            "select": [
                {"column": {"entity": "c", "column": c}} for c in ("customer_id", "company_name", "city", "country")
            ],
            "filters": [
                {
                    "column": {"entity": "c", "column": column},
                    "op": "eq",
                    "param": "country",
                    "phrase": "a given country",
                }
            ],
            "parameters": [{"name": "country", "type": "string", "required": True, "phrase": "a given country"}],
            "order_by": [{"column": {"entity": "c", "column": "customer_id"}, "direction": "asc"}],
        }
        compiled = interpretation_compile(
            interpretation_parse(interpretation), catalog=Catalog(schema), dialect=context.get("dialect") or "postgres"
        )
        structured = {
            "path": "customers-in-country",
            "description": "Customers in a given country",
            "interpretation": interpretation,
            "sql": compiled.sql,
            "rationale": [f"the {column} column holds where a customer is"],
        }
        return f"Design: customers filtered by {column} = {{country}}", structured, []


@pytest.fixture(scope="module")
def northwind_sqlite(tmp_path_factory):
    source = load_postgres(dataset="northwind", database=unique_name("test_ratings_northwind"), progress=False)
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


@pytest.fixture
def bench(northwind_sqlite):
    item = next(i for i in requirements_load("northwind", northwind_sqlite.shift) if i.id == REQUIREMENT)
    references = References(northwind_sqlite)
    sql, _derived = item.reference_sql("sqlite")
    workspace = Workspace(copy=northwind_sqlite, label="ratings")
    try:
        yield workspace, item, (lambda: references.rows(sql, item.parameters))
    finally:
        workspace.close()
        references.close()


def _first_pass(bench, provider):
    workspace, item, reference = bench
    first = run_requirement(workspace, item, reference, database="northwind", engine="sqlite", provider=provider)
    assert first.outcome == "wrong", f"{first.outcome}: {first.why}\n{first.sql}"
    assert "city =" in first.sql.lower().replace('"', "") and first.fingerprint
    return first


def _second_pass(bench, provider, first):
    workspace, item, reference = bench
    [entry] = learning_pass(
        workspace, [first], {item.id: item}, {item.id: reference}, database="northwind", engine="sqlite",
        provider=provider,
    )  # fmt: skip
    rated = AgentExecution.objects.get(pk=first.execution_id)
    assert rated.rating == -1 and rated.feedback.startswith("Wrong result: ")
    second = entry["second"]
    assert second.execution_id and second.execution_id != first.execution_id
    offered = _offered_designs(second.execution_id)
    assert all(fingerprint != first.fingerprint for fingerprint, _sql in offered)
    assert all(sql != first.sql for _fingerprint, sql in offered)
    assert entry["offered_again"] is False
    return second


def test_a_rated_down_design_is_not_offered_again_and_a_different_one_is_found(bench):
    provider = CityForCountry(learns=True)
    first = _first_pass(bench, provider)
    second = _second_pass(bench, provider, first)
    assert second.outcome == "correct", f"{second.outcome}: {second.why}\n{second.sql}"
    assert second.fingerprint and second.fingerprint != first.fingerprint
    # The second run was offered the rated-down design first, and the platform sent it back.
    assert _refused_as_rated_down(second.execution_id)


def test_a_source_that_insists_on_the_rated_down_design_gets_a_run_that_asks_or_declines(bench):
    provider = CityForCountry(learns=False)
    first = _first_pass(bench, provider)
    second = _second_pass(bench, provider, first)
    assert second.outcome == "declined" and second.why
    execution = AgentExecution.objects.get(pk=second.execution_id)
    assert execution.status in (AgentStatus.FAILED, AgentStatus.WAITING), execution.status
    if execution.status == AgentStatus.FAILED:
        assert "rated not helpful" in execution.status_reason
    assert _offered_designs(second.execution_id) == []
    assert _refused_as_rated_down(second.execution_id)


def test_without_the_rating_the_same_design_comes_back_and_the_bench_would_count_it(bench):
    """The figure can be non-zero: unrated, the scripted source's wrong design is offered again."""
    workspace, item, reference = bench
    provider = CityForCountry(learns=False)
    first = _first_pass(bench, provider)
    again = run_requirement(workspace, item, reference, database="northwind", engine="sqlite", provider=provider)
    assert again.outcome == "wrong"
    assert (first.fingerprint, first.sql) in _offered_designs(again.execution_id)
    assert design_fingerprint(interpretation_parse(_endpoint_interpretation(again))) == first.fingerprint


def _refused_as_rated_down(execution_id: str) -> bool:
    execution = AgentExecution.objects.get(pk=execution_id)
    reasons = [r for e in execution.events.filter(kind="retry") for r in e.payload.get("reasons") or []]
    return any("rated not helpful" in r for r in reasons)


def _endpoint_interpretation(outcome) -> dict:
    from endpoints.models import GeneratedEndpoint

    return GeneratedEndpoint.objects.get(source_execution_id=outcome.execution_id, sql=outcome.sql).interpretation
