"""The accuracy bench's comparison rules: what counts as the reference's answer, and what is wrong."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from bench.bench_accuracy import parameters_map
from bench.compare import MAX_EXTRA_COLUMNS, result_compare

REFERENCE = [
    {"customer_id": 1, "first_name": "Ada", "last_name": "Lovelace", "spent": Decimal("120.50")},
    {"customer_id": 2, "first_name": "Alan", "last_name": "Turing", "spent": Decimal("99.99")},
    {"customer_id": 3, "first_name": "Grace", "last_name": "Hopper", "spent": Decimal("99.99")},
    {"customer_id": 4, "first_name": "Edsger", "last_name": "Dijkstra", "spent": Decimal("10.00")},
]


def _rows(*, rename: dict | None = None, drop: tuple = (), extra: dict | None = None, order=None) -> list[dict]:
    rows = []
    for index in order or range(len(REFERENCE)):
        row = {(rename or {}).get(k, k): v for k, v in REFERENCE[index].items() if k not in drop}
        rows.append({**row, **(extra or {})})
    return rows


def test_the_same_rows_in_another_order_and_under_other_names_are_correct():
    actual = _rows(rename={"spent": "total_spent", "customer_id": "id"}, order=[3, 1, 0, 2])
    verdict = result_compare(reference=REFERENCE, actual=actual)
    assert verdict.correct, verdict.why
    assert verdict.mapping["spent"] == "total_spent"


def test_numbers_dates_and_text_compare_by_value_not_by_type():
    reference = [{"day": date(2026, 3, 1), "amount": Decimal("1234.5"), "name": "English             "}]
    actual = [{"day": "2026-03-01T00:00:00Z", "amount": "1234.50", "name": "English"}]
    assert result_compare(reference=reference, actual=actual).correct
    months = [{"month": "2026-03", "amount": 1234.5000001, "name": "English"}]
    assert result_compare(reference=reference, actual=months).correct
    assert result_compare(
        reference=[{"at": datetime(2026, 3, 1, 12, 5)}], actual=[{"at": "2026-03-01 12:05:00"}]
    ).correct


def test_single_precision_noise_in_a_large_sum_is_tolerated_but_a_cent_on_a_small_one_is_not():
    assert result_compare(reference=[{"total": Decimal("287533.12")}], actual=[{"total": 287533.16}]).correct
    verdict = result_compare(reference=[{"total": Decimal("12.34")}], actual=[{"total": 12.37}])
    assert not verdict.correct and "holds other values" in verdict.why


def test_a_wrong_column_is_wrong():
    actual = _rows(drop=("last_name",), extra={"city": "London"})
    verdict = result_compare(reference=REFERENCE, actual=actual)
    assert not verdict.correct
    assert "'last_name'" in verdict.why


def test_a_column_with_other_values_under_the_same_name_is_wrong():
    actual = _rows()
    actual[0] = {**actual[0], "spent": Decimal("1.00")}
    verdict = result_compare(reference=REFERENCE, actual=actual)
    assert not verdict.correct and "'spent'" in verdict.why


def test_columns_that_each_agree_but_pair_up_differently_are_wrong():
    actual = _rows()
    actual[0]["spent"], actual[3]["spent"] = actual[3]["spent"], actual[0]["spent"]
    verdict = result_compare(reference=REFERENCE, actual=actual)
    assert not verdict.correct and "reference rows are not in the result" in verdict.why


def test_a_silently_cut_result_is_wrong():
    verdict = result_compare(reference=REFERENCE, actual=_rows()[:3])
    assert not verdict.correct and verdict.why == "3 rows instead of 4"


def test_a_result_that_says_truncated_is_wrong_even_when_the_count_fits():
    verdict = result_compare(reference=REFERENCE, actual=_rows(), truncated=True)
    assert not verdict.correct and "truncated" in verdict.why


def test_order_is_checked_on_the_ordering_columns_when_order_matters():
    reference = sorted(REFERENCE, key=lambda r: -r["spent"])
    verdict = result_compare(reference=reference, actual=_rows(order=[3, 1, 2, 0]), ordered_by=["spent"])
    assert not verdict.correct and "not in the order of spent" in verdict.why
    assert result_compare(reference=reference, actual=_rows(order=[3, 1, 2, 0])).correct


def test_rows_that_tie_on_the_ordering_column_may_come_in_either_order():
    reference = [REFERENCE[0], REFERENCE[1], REFERENCE[2], REFERENCE[3]]  # 120.50, 99.99, 99.99, 10.00
    swapped = _rows(order=[0, 2, 1, 3])
    assert result_compare(reference=reference, actual=swapped, ordered_by=["spent"]).correct


def test_a_few_extra_columns_are_allowed_but_not_any_number():
    few = _rows(extra={f"extra_{i}": i for i in range(MAX_EXTRA_COLUMNS)})
    assert result_compare(reference=REFERENCE, actual=few).correct
    many = _rows(extra={f"extra_{i}": i for i in range(MAX_EXTRA_COLUMNS + 1)})
    verdict = result_compare(reference=REFERENCE, actual=many)
    assert not verdict.correct and "columns beyond the reference's" in verdict.why


def test_an_empty_reference_is_refused():
    with pytest.raises(ValueError, match="empty reference"):
        result_compare(reference=[], actual=[])


def test_requirement_parameters_map_onto_endpoint_parameters_by_name_and_kind():
    schema = {
        "properties": {
            "customer_country": {"type": "string"},
            "since_date": {"type": "string", "format": "date"},
            "top_n": {"type": "integer", "default": 100},
        }
    }
    mapped, missing = parameters_map(wanted={"country": "Canada", "since": "2026-01-01"}, schema=schema)
    assert mapped == {"customer_country": "Canada", "since_date": "2026-01-01"} and missing == []
    mapped, missing = parameters_map(
        wanted={"category_id": 2}, schema={"properties": {"category": {"type": "integer"}}}
    )
    assert mapped == {"category": 2}


def test_a_requirement_parameter_the_endpoint_does_not_expose_is_missing():
    mapped, missing = parameters_map(
        wanted={"country": "Canada"}, schema={"properties": {"top_n": {"type": "integer"}}}
    )
    assert mapped == {} and missing == ["country"]
    mapped, missing = parameters_map(
        wanted={"customer_id": 5}, schema={"properties": {"id": {"type": "integer"}, "top_n": {"type": "integer"}}}
    )
    assert mapped == {"id": 5} and missing == []
    mapped, missing = parameters_map(
        wanted={"customer_id": 5, "since": "2026-01-01"}, schema={"properties": {"region": {"type": "string"}}}
    )
    assert mapped == {} and missing == ["customer_id", "since"]


def test_a_value_at_another_scale_is_wrong_but_the_same_value_at_another_precision_is_right():
    reference = [{"price": Decimal("4.99")}, {"price": Decimal("0.99")}]
    assert result_compare(reference=reference, actual=[{"price": 4.990000}, {"price": "0.9900"}]).correct
    cents = result_compare(reference=reference, actual=[{"price": 499}, {"price": 99}])
    assert not cents.correct and "holds other values" in cents.why
    rounded = result_compare(reference=reference, actual=[{"price": 5}, {"price": 1}])
    assert not rounded.correct and "holds other values" in rounded.why
    at_the_boundary = [{"average": Decimal("2.345")}]
    assert result_compare(reference=at_the_boundary, actual=[{"average": 2.3449999}]).correct
    assert result_compare(reference=at_the_boundary, actual=[{"average": 2.35}]).correct


def test_rows_in_the_reverse_order_are_wrong_when_order_matters():
    reference = sorted(REFERENCE, key=lambda r: -r["spent"])
    verdict = result_compare(reference=reference, actual=list(reversed(reference)), ordered_by=["spent"])
    assert not verdict.correct and "row 1 has 10.0 where 120.5 is expected" in verdict.why


def test_pages_read_to_the_end_are_one_result_and_a_missing_last_page_is_wrong():
    pages = [_rows()[:2], _rows()[2:]]
    assert result_compare(reference=REFERENCE, actual=[row for page in pages for row in page]).correct
    verdict = result_compare(reference=REFERENCE, actual=pages[0])
    assert not verdict.correct and verdict.why == "2 rows instead of 4"


def test_a_value_is_never_guessed_onto_one_of_several_parameters_of_its_kind():
    schema = {"properties": {"city": {"type": "string"}, "region": {"type": "string"}}}
    mapped, missing = parameters_map(wanted={"country": "Canada"}, schema=schema)
    assert mapped == {} and missing == ["country"]
    mapped, missing = parameters_map(
        wanted={"since": "2026-01-01"}, schema={"properties": {"top_n": {"type": "integer"}}}
    )
    assert mapped == {} and missing == ["since"]
