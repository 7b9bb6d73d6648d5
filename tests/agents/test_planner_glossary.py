"""Glossary terms never take a word the planner's grammar reads: windows, comparisons, recency, 'a given X'."""

from __future__ import annotations

import pytest

from agents.planner import plan_requirement

from .test_planner_shapes import LIBRARY, _problems

LAST_NAME = {"term": "last", "kind": "column", "object": "members", "column": "last_name"}


def _interp(requirement: str, glossary: list[dict] | None = None):
    return plan_requirement(requirement=requirement, schema=LIBRARY, glossary=glossary).interpretation


@pytest.mark.parametrize(
    ("requirement", "term"),
    [
        ("Loans in the last 30 days", LAST_NAME),
        ("Members who made more than 5 loans", {"term": "more", "kind": "ignore"}),
        ("Members of a given region", {"term": "given", "kind": "column", "object": "towns", "column": "town"}),
        ("The three most recent loans", {"term": "most", "kind": "column", "object": "loans", "column": "fee"}),
        # a term holding a business word is refused where its grammar word lies in a phrase the grammar read
        ("Find a member by first and last name", {**LAST_NAME, "term": "last name"}),
        ("The latest loans", {"term": "latest loans", "kind": "value", "object": "loans", "column": "fee", "value": 1}),
    ],
)
def test_a_term_never_changes_how_the_grammar_reads_a_requirement(requirement, term):
    plain = _interp(requirement)
    with_term = _interp(requirement, [term])
    assert with_term.model_dump() == plain.model_dump()
    assert _problems(requirement, with_term) == []


def test_the_window_of_last_n_days_survives_a_term_last_kept_from_before():
    interp = _interp("Loans in the last 30 days", [LAST_NAME])
    [window] = interp.windows
    assert window.start.relative.amount == -30 and window.column.column == "borrowed_at"
    assert "last_name" not in interp.model_dump_json()


def test_a_term_matches_whole_words_through_inflections():
    borrower = {"term": "borrower", "kind": "entity", "object": "members"}
    interp = _interp("Borrowers of a given region", [borrower])
    assert interp.root.object == "members" and interp.parameter("region").required
    last_name = {**LAST_NAME, "term": "last name"}
    interp = _interp("Members with their last names", [last_name])
    assert any(c.column.column == "last_name" and c.phrase == "last names" for c in interp.select)
