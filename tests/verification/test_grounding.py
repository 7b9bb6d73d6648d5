"""A measure is what its own words say: the words of a measure's phrase are checked against its definition."""

from __future__ import annotations

from endpoints.interpretation import interpretation_parse
from endpoints.verification.findings import failed
from endpoints.verification.grounding import measure_grounding_check

CUSTOMERS = {"alias": "c", "object": "public.customer_lifetime_value", "phrase": ""}
ORDERS = {"alias": "o", "object": "public.orders", "phrase": ""}


def _design(entity: dict, measure: dict, group_phrase: str = "per customer segment") -> object:
    return interpretation_parse(
        {
            "entities": [entity],
            "group_by": [
                {"label": "segment", "column": {"entity": entity["alias"], "column": "segment"}, "phrase": group_phrase}
            ],
            "measures": [measure],
        }
    )


def _messages(interp, terms=None) -> list[str]:
    return [f.message for f in failed(measure_grounding_check(interpretation=interp, terms=terms))]


def test_a_measure_of_another_table_than_the_one_its_words_name_is_refused():
    wrong = _design(
        CUSTOMERS,
        {
            "id": "average_lifetime_value",
            "func": "avg",
            "column": {"entity": "c", "column": "lifetime_value"},
            "phrase": "Average order value",
        },
    )
    assert _messages(wrong) == [
        "'order' in 'Average order value' is not what the design measures (AVG(lifetime_value))"
    ]


def test_the_measure_its_words_name_passes():
    right = _design(
        ORDERS,
        {
            "id": "average_order_value",
            "func": "avg",
            "column": {"entity": "o", "column": "total_amount"},
            "phrase": "Average order value",
        },
    )
    assert _messages(right) == []


def test_a_money_word_needs_a_measure_of_a_column_not_a_count_of_rows():
    counted = _design(ORDERS, {"id": "revenue", "func": "count", "phrase": "revenue"}, group_phrase="by channel")
    summed = _design(
        ORDERS,
        {"id": "revenue", "func": "sum", "column": {"entity": "o", "column": "total_amount"}, "phrase": "revenue"},
        group_phrase="by channel",
    )
    assert _messages(counted) == ["'revenue' in 'revenue' is not what the design measures (a count of rows)"]
    assert _messages(summed) == []


def test_words_of_other_elements_and_business_terms_explain_themselves():
    # "per month" belongs to the grouping, "churn risk" is a term the Service's glossary defines.
    interp = _design(
        CUSTOMERS,
        {
            "id": "churn_risk",
            "func": "avg",
            "column": {"entity": "c", "column": "lifetime_value"},
            "phrase": "average churn risk per customer segment",
        },
    )
    assert _messages(interp, terms=["churn risk"]) == []
    assert _messages(interp) == [
        "'churn' in 'average churn risk per customer segment' is not what the design measures (AVG(lifetime_value))",
        "'risk' in 'average churn risk per customer segment' is not what the design measures (AVG(lifetime_value))",
    ]


def test_a_count_is_explained_by_the_rows_it_counts_and_its_own_conditions():
    interp = _design(
        ORDERS,
        {
            "id": "cancelled_orders",
            "func": "count",
            "entity": "o",
            "phrase": "number of cancelled orders",
            "filters": [{"column": {"entity": "o", "column": "status"}, "value": "cancelled"}],
        },
    )
    assert _messages(interp) == []


def test_lifetime_is_a_measure_over_all_time_never_one_within_a_window():
    measure = {
        "id": "lifetime_spend",
        "func": "sum",
        "column": {"entity": "o", "column": "total_amount"},
        "phrase": "lifetime spend",
    }
    assert _messages(_design(ORDERS, measure)) == []
    windowed = measure | {
        "window": {
            "column": {"entity": "o", "column": "order_date"},
            "start": {"relative": {"amount": -30, "unit": "day"}},
        }
    }
    assert _messages(_design(ORDERS, windowed)) == [
        "'lifetime' in 'lifetime spend' is not what the design measures (SUM(total_amount))"
    ]
