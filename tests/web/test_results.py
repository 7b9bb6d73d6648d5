"""Results beyond the page: CSV download of a try-it call, and a chart where the result is a series or a measure."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.web.conftest import login
from web.charts import chart_for_result

pytestmark = pytest.mark.django_db


def test_try_it_offers_a_csv_of_the_same_call(client, member, endpoint):
    login(client, member)
    result = client.post(reverse("endpoint-try", args=[endpoint.pk]), {"region": "EU", "limit": "5"}).text
    assert 'id="download-csv"' in result and 'name="region" value="EU"' in result
    response = client.post(reverse("endpoint-try-csv", args=[endpoint.pk]), {"region": "EU"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="eu-customers-v1.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["customer_id", "first_name", "last_name", "region"]
    assert len(rows) > 6 and all(row[3] == "EU" for row in rows[1:])


def test_csv_of_bad_parameters_is_a_clear_error(client, member, endpoint):
    response = login(client, member).post(reverse("endpoint-try-csv", args=[endpoint.pk]), {"region": "MARS"})
    assert response.status_code == 400 and b"region" in response.content


def test_outsider_cannot_download_another_organizations_csv(client, outsider, endpoint):
    response = login(client, outsider).post(reverse("endpoint-try-csv", args=[endpoint.pk]), {"region": "EU"})
    assert response.status_code == 404


def test_a_monthly_series_by_region_is_drawn_as_lines():
    rows = [
        {"month": f"2026-{m:02d}", "region": region, "revenue": Decimal(f"{m * 100 + i}.50")}
        for m in range(1, 7)
        for i, region in enumerate(["EU", "NA"])
    ]
    chart = chart_for_result(["month", "region", "revenue"], rows)
    assert chart.kind == "line" and set(chart.series) == {"EU", "NA"} and len(chart.series["EU"]) == 6
    svg = str(chart.render())
    assert svg.count("<path") == 2 and "<title>2026-01: EU = 100.5</title>" in svg


def test_a_measure_by_group_is_drawn_as_bars():
    rows = [{"category": c, "units": n} for c, n in (("toys", 12), ("books", 30), ("garden", 7))]
    chart = chart_for_result(["category", "units"], rows)
    assert chart.kind == "bar"
    assert str(chart.render()).count("<rect") == 3


def test_rows_without_a_measure_get_no_chart():
    rows = [{"customer_id": i, "first_name": f"A{i}", "region": "EU"} for i in range(5)]
    assert chart_for_result(["customer_id", "first_name", "region"], rows) is None
