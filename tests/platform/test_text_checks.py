"""nectar.text: the quick check of clean values says what the full walk would say."""

from __future__ import annotations

import pytest

from nectar.text import MAX_DEPTH, _walk, data_text_problem


def _nested(levels: int, leaf):
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


CASES = [
    None,
    {},
    {"columns": ["id", "name"], "filters": {"region": "EU", "balance": {"gte": 10.5}}, "limit": 20},
    {"name": "Zoë 東京 🐝"},
    {"name": "a\x00b"},
    {"a\x00": 1},
    {"deep": {"list": [1, 2, {"x": "ok", "y": "bad \ud800"}]}},
    {"bytes": "\udcff"},
    {7: "int key", "fine": True},
    ("tuple", "\x00"),
    _nested(MAX_DEPTH, "leaf"),
    _nested(MAX_DEPTH + 1, "leaf"),
    {"wide": ["x"] * 500 + ["\x00"]},
]


@pytest.mark.parametrize("value", CASES)
def test_the_quick_check_agrees_with_the_walk(value):
    assert data_text_problem(value, "arguments") == next(_walk(value, "arguments"), None)


def test_a_problem_is_named_by_its_path():
    assert data_text_problem({"deep": {"list": [1, {"y": "\x00"}]}}, "arguments") == (
        "arguments.deep.list[1].y",
        "The text contains a NUL character (\\u0000), which text cannot hold.",
    )
    assert data_text_problem({"ok": "fine"}, "arguments") is None
