"""The glossary never takes the words of a request's grammar: 'last', 'more', 'given', 'up' are no business terms."""

from __future__ import annotations

import json

import pytest

from learning.glossary import GLOSSARY_TAG, glossary_define, glossary_for_prompt, glossary_terms
from learning.grammar import is_grammatical
from learning.models import MemoryType
from learning.services import LearningInputError, memory_create
from roles.models import Service

pytestmark = pytest.mark.django_db

LAST_NAME = {"kind": "column", "object": "members", "column": "last_name"}


@pytest.fixture
def service(org):
    return Service.objects.create(organization=org, name="Library", engine="sqlite", database="library.sqlite")


@pytest.mark.parametrize("term", ["last", "more", "Given", "up", "last 30 days", "more than", "the most", "twice"])
def test_a_word_of_the_grammar_is_refused_as_a_term_with_a_clear_error_and_nothing_is_stored(service, owner, term):
    with pytest.raises(LearningInputError) as error:
        glossary_define(service=service, term=term, mapping=LAST_NAME, user=owner)
    assert "ordinary word of a request" in str(error.value) and "not a business term" in str(error.value)
    assert glossary_terms(service=service) == []


def test_a_term_that_holds_a_business_word_beside_a_grammar_word_is_kept(service, owner):
    term = glossary_define(service=service, term="Last name", mapping=LAST_NAME, user=owner)
    assert term.term == "last name"
    assert [t["term"] for t in glossary_for_prompt(service=service)] == ["last name"]


def test_a_grammar_word_stored_before_it_was_refused_never_reaches_the_planner(service, owner):
    memory_create(
        organization=service.organization,
        type=MemoryType.BUSINESS_RULE,
        content=json.dumps({"term": "last", "mapping": LAST_NAME, "note": ""}),
        tags=[GLOSSARY_TAG, "business-rule", "last"],
        service=service,
        role=None,
    )
    glossary_define(service=service, term="member", mapping={"kind": "entity", "object": "members"}, user=owner)
    assert {t.term for t in glossary_terms(service=service)} == {"last", "member"}  # still listed, to be removed
    assert [t["term"] for t in glossary_for_prompt(service=service)] == ["member"]


def test_grammar_words_are_told_apart_from_business_words():
    assert is_grammatical("in the last 30 days") and is_grammatical("a given") and is_grammatical("look up")
    assert not is_grammatical("last name") and not is_grammatical("gold") and not is_grammatical("")
