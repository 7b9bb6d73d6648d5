"""Arithmetic of one row's columns ('unit_price * quantity * (1 - discount)'), checked before anyone uses it.

A business term may be defined as such an expression (a glossary `measure` with `expression`, an
interpretation's Measure with `expression`). It is never SQL: only column names, numeric literals,
+ - * / and parentheses are accepted, parsed with sqlglot, and written back in a normal form that
each dialect renders by itself (endpoints.compiler).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

MAX_EXPRESSION_CHARS = 300
_OPERATORS = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class ExpressionError(ValueError):
    """The text is not an arithmetic of columns; the message says what is not allowed."""


def _tree(text: str) -> exp.Expression:
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression needs at least one column")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"an expression is at most {MAX_EXPRESSION_CHARS} characters")
    if re.search(r"[;'\"`\[\]{}]|--|/\*", text):
        raise ExpressionError("an expression holds only column names, numbers, + - * / and parentheses")
    try:
        tree = sqlglot.parse_one(text, read="sqlite")
    except sqlglot.errors.ParseError as exc:
        raise ExpressionError("an expression holds only column names, numbers, + - * / and parentheses") from exc
    _check(tree)
    return tree


def _check(node: exp.Expression) -> None:
    if isinstance(node, exp.Paren):
        _check(node.this)
    elif isinstance(node, tuple(_OPERATORS)):
        _check(node.left)
        _check(node.right)
    elif isinstance(node, exp.Neg):
        _check(node.this)
    elif isinstance(node, exp.Column):
        if node.table or not _NAME.match(node.name):
            raise ExpressionError(f"'{node.sql()}' is not a plain column name of the row")
    elif isinstance(node, exp.Literal):
        if node.is_string:
            raise ExpressionError("an expression holds no text values")
    else:
        raise ExpressionError(f"'{node.sql()}' is not allowed: only columns, numbers, + - * / and parentheses")


def arithmetic_columns(text: str) -> list[str]:
    """The columns an expression reads, in order of first appearance (raises ExpressionError when invalid)."""
    out: list[str] = []
    for column in _tree(text).find_all(exp.Column):
        if column.name not in out:
            out.append(column.name)
    if not out:
        raise ExpressionError("an expression needs at least one column")
    return out


def arithmetic_normalize(text: str) -> str:
    """The expression in its normal form ('unit_price * quantity * (1 - discount)')."""
    return arithmetic_render(text, lambda name: name)


def arithmetic_render(text: str, column: Callable[[str], str], *, divisible: Callable[[str], str] | None = None) -> str:
    """The expression with each column written by `column(name)` (an alias, quoting, a cast); the left side of
    a division through `divisible` (a cast that keeps integers from dividing to a whole number)."""

    def render(node: exp.Expression) -> str:
        if isinstance(node, exp.Div) and divisible is not None:
            return f"{divisible(render(node.left))} / {render(node.right)}"
        if isinstance(node, exp.Paren):
            return f"({render(node.this)})"
        if isinstance(node, exp.Neg):
            return f"-{render(node.this)}"
        for kind, symbol in _OPERATORS.items():
            if isinstance(node, kind):
                return f"{render(node.left)} {symbol} {render(node.right)}"
        if isinstance(node, exp.Column):
            return column(node.name)
        return str(node.this)

    return render(_tree(text))
