"""The bench's oracle for clarification questions: it answers like a user who knows what they meant."""

from __future__ import annotations

import pytest

from bench.clarify import answers_for, choice_fits, reference_facts

SQL = (
    "SELECT c.customer_id, c.first_name, SUM(p.amount) AS spent FROM customer c "
    "JOIN address a ON a.address_id = c.address_id JOIN city ci ON ci.city_id = a.city_id "
    "JOIN country co ON co.country_id = ci.country_id JOIN payment p ON p.customer_id = c.customer_id "
    "WHERE co.country = :country AND p.status IN ('completed', 'refunded') GROUP BY 1, 2"
)
FACTS = reference_facts(sql=SQL, parameters={"country": "Canada"})


def _question(*choices, qid="q1", phrase="live"):
    return {"id": qid, "phrase": phrase, "text": f"'{phrase}': which?", "kind": "column", "choices": list(choices)}


def _choice(cid, **mapping):
    return {"id": cid, "label": cid, "mapping": mapping}


def test_it_picks_the_column_the_reference_filters_on():
    question = _question(
        _choice("city", kind="column", table="city", column="city"),
        _choice("country", kind="column", table="country", column="country"),
    )
    assert answers_for(questions=[question], facts=FACTS) == ({"q1": "country"}, "")


def test_values_measures_and_filters_must_be_the_reference_s_own():
    assert choice_fits({"kind": "value", "table": "country", "column": "country", "value": "canada"}, FACTS)
    assert not choice_fits({"kind": "value", "table": "country", "column": "country", "value": "Mexico"}, FACTS)
    assert choice_fits({"kind": "filter", "column": "status", "value": ["completed", "refunded"]}, FACTS)
    assert choice_fits({"kind": "measure", "func": "sum", "table": "payment", "column": "amount"}, FACTS)
    assert not choice_fits({"kind": "measure", "func": "avg", "column": "amount"}, FACTS)
    assert not choice_fits({"kind": "column"}, FACTS)


def test_it_gives_up_when_no_choice_or_several_fit():
    none_fit = _question(_choice("city", kind="column", table="city", column="city"))
    answers, why = answers_for(questions=[none_fit], facts=FACTS)
    assert answers == {} and "no choice fits" in why
    both = _question(
        _choice("a", kind="column", table="customer", column="first_name"),
        _choice("b", kind="column", column="first_name"),
    )
    answers, why = answers_for(questions=[both], facts=FACTS)
    assert answers == {} and "2 choices fit" in why


def test_the_planner_s_own_mapping_shapes_are_understood():
    assert choice_fits({"kind": "entity", "object": "public.customer"}, FACTS)
    assert choice_fits({"kind": "column", "object": "country", "column": "country"}, FACTS)
    assert choice_fits(
        {"kind": "value", "object": "country", "column": "country", "op": "eq", "value": "Canada"}, FACTS
    )
    statuses = {
        "kind": "filter",
        "object": "payment",
        "filters": [{"column": "status", "op": "in", "values": ["completed"]}],
    }
    assert choice_fits(statuses, FACTS)
    assert not choice_fits({"term": "live", "kind": "ignore"}, FACTS)


def test_a_which_values_count_question_is_answered_with_every_value_the_reference_uses():
    def status(value):
        filters = [{"column": "status", "op": "in", "values": [value]}]
        return _choice(value, kind="filter", object="payment", filters=filters)

    question = {
        "id": "statuses_1",
        "phrase": "spent",
        "text": "'spent': which payment.status values count? Choose one or more.",
        "kind": "filter",
        "choices": [_choice("all", kind="filter", object="payment", filters=[]), status("completed"),
                    status("refunded"), status("failed")],
    }  # fmt: skip
    assert answers_for(questions=[question], facts=FACTS) == ({"statuses_1": ["completed", "refunded"]}, "")
    unfiltered = reference_facts(sql="SELECT SUM(p.amount) FROM payment p")
    assert answers_for(questions=[question], facts=unfiltered) == ({"statuses_1": "all"}, "")


def _leave_out_question(word: str, *choices):
    leave = {"id": "leave_it_out", "label": f"'{word}' adds nothing", "mapping": {"term": word, "kind": "ignore"}}
    return {"id": "q1", "phrase": word, "text": f"What does '{word}' mean?", "kind": "other",
            "choices": [*choices, leave]}  # fmt: skip


def test_a_filler_word_is_left_out():
    question = _leave_out_question("given", _choice("city", kind="column", table="city", column="city"))
    assert answers_for(questions=[question], facts=FACTS) == ({"q1": "leave_it_out"}, "")


def test_a_word_that_names_a_number_an_order_or_something_of_the_reference_is_never_left_out():
    ranked = reference_facts(
        sql="SELECT e.employee_id, m.first_name AS manager_first_name FROM employees e "
        "JOIN employees m ON m.employee_id = e.reports_to ORDER BY e.hire_date DESC LIMIT 4"
    )
    for word in ("four", "4", "most", "latest", "manager", "managers", "employee", "never", "longer", "sell"):
        answers, why = answers_for(questions=[_leave_out_question(word)], facts=ranked)
        assert answers == {} and "no choice fits" in why, word
    # A choice that fits wins over leaving the word out.
    question = _leave_out_question("live", _choice("country", kind="column", table="country", column="country"))
    assert answers_for(questions=[question], facts=FACTS) == ({"q1": "country"}, "")


def test_a_measure_of_an_expression_is_not_the_sum_of_one_of_its_columns():
    revenue = reference_facts(
        sql="SELECT o.customer_id, SUM(od.unit_price * od.quantity * (1 - od.discount)) AS revenue "
        "FROM orders o JOIN order_details od ON od.order_id = o.order_id GROUP BY o.customer_id"
    )
    question = _question(
        _choice("price", kind="measure", func="sum", table="order_details", column="unit_price"),
        _choice("discount", kind="measure", func="sum", table="order_details", column="discount"),
        phrase="revenue",
    )
    answers, why = answers_for(questions=[question], facts=revenue)
    assert answers == {} and "no choice fits" in why
    gross = reference_facts(sql="SELECT SUM(od.unit_price * od.quantity) AS gross FROM order_details od")
    times = {"kind": "measure", "func": "sum", "table": "order_details", "column": "unit_price", "times": "quantity"}
    assert choice_fits(times, gross) and not choice_fits(times, revenue)
    distinct = reference_facts(sql="SELECT COUNT(DISTINCT o.customer_id) AS buyers FROM orders o")
    assert choice_fits({"kind": "measure", "func": "count_distinct", "column": "customer_id"}, distinct)
    assert not choice_fits({"kind": "measure", "func": "count", "column": "customer_id"}, distinct)


def test_of_several_fitting_choices_the_one_that_says_exactly_what_the_reference_does_is_taken():
    country = _question(
        _choice("table", kind="entity", object="country"),
        _choice("key", kind="column", table="city", column="country_id"),
        _choice("name", kind="column", table="country", column="country"),
        phrase="country",
    )
    assert answers_for(questions=[country], facts=FACTS) == ({"q1": "name"}, "")
    rated = reference_facts(sql="SELECT title FROM film WHERE rating = 'R' AND rental_rate > 4")
    r_rated = _question(
        _choice("rating", kind="value", table="film", column="rating", value="R"),
        _choice("rate", kind="column", table="film", column="rental_rate"),
        phrase="R-rated",
    )
    assert answers_for(questions=[r_rated], facts=rated) == ({"q1": "rating"}, "")
    # Two choices that say the reference equally exactly (both returned columns): no guess.
    both = _question(
        _choice("first", kind="column", table="customer", column="first_name"),
        _choice("id", kind="column", table="customer", column="customer_id"),
        phrase="customer",
    )
    answers, why = answers_for(questions=[both], facts=FACTS)
    assert answers == {} and "2 choices fit" in why


LINES_SQL = (
    "SELECT c.category_name, SUM(CAST(od.unit_price AS numeric) * od.quantity * (1 - CAST(od.discount AS numeric))) "
    "AS revenue FROM order_details od JOIN products p ON p.product_id = od.product_id "
    "JOIN categories c ON c.category_id = p.category_id GROUP BY c.category_name"
)


def test_an_expression_choice_fits_only_the_arithmetic_the_reference_aggregates():
    facts = reference_facts(sql=LINES_SQL)
    base = {"kind": "measure", "func": "sum", "object": "order_details", "column": "unit_price"}
    question = _question(
        _choice("fraction", **base, expression="unit_price * quantity * (1 - discount)"),
        _choice("percent", **base, expression="unit_price * quantity * (1 - discount / 100)"),
        _choice("gross", **base, expression="unit_price * quantity"),
        _choice("price", **base),
        phrase="revenue",
    )
    assert answers_for(questions=[question], facts=facts) == ({"q1": "fraction"}, "")


def test_a_unit_or_scale_choice_fits_the_comparison_the_reference_makes():
    facts = reference_facts(sql="SELECT film_id, title, length FROM film WHERE length > 180")
    question = _question(
        *(
            _choice(unit, kind="column", object="film", column="length", unit=unit, op="gt", value=value)
            for unit, value in (("minute", 180), ("hour", 3), ("second", 10800))
        ),
        phrase="run longer than 3 hours",
    )
    assert answers_for(questions=[question], facts=facts) == ({"q1": "minute"}, "")


@pytest.mark.parametrize("dialect", ["postgres", "sqlite", "mysql"])
def test_a_comparison_of_an_arithmetic_is_read_from_the_reference_in_every_dialect(dialect):
    sql = "SELECT product_id FROM products WHERE (price - cost) / price < 0.3"
    facts = reference_facts(sql=sql, dialect=dialect)
    assert facts.comparisons == {("(price - cost) / price", "lt", "0.3")}


def test_a_formula_choice_fits_the_arithmetic_and_the_comparison_the_reference_filters_on():
    facts = reference_facts(sql="SELECT product_id FROM products WHERE (price - cost) / price < 0.3")
    base = {"kind": "formula", "object": "products", "column": "price", "op": "lt", "value": 0.3}
    question = _question(
        _choice("on_price", **base, expression="(price - cost) / price"),
        _choice("on_cost", **base, expression="(price - cost) / cost"),
        phrase="margin below 30%",
    )
    assert answers_for(questions=[question], facts=facts) == ({"q1": "on_price"}, "")
