"""endpoint_update_draft: the one way to change a draft's SQL, parameters, tests or docs."""

import pytest

from endpoints.models import EndpointStatus, GeneratedEndpoint
from endpoints.services import EndpointError, endpoint_approve, endpoint_update_draft

pytestmark = pytest.mark.django_db


def test_a_draft_takes_new_sql_tests_and_docs(make_draft):
    endpoint = make_draft()
    sql = "SELECT customer_id, region FROM customers WHERE region = :region ORDER BY customer_id LIMIT 100"
    cases = [{"name": "north", "params": {"region": "North"}, "expect": {"status": 200}}]

    endpoint_update_draft(endpoint=endpoint, sql=f"  {sql}\n", tests=cases, docs="Customers of one region.")

    stored = GeneratedEndpoint.objects.get(pk=endpoint.pk)
    assert (stored.sql, stored.tests, stored.docs) == (sql, cases, "Customers of one region.")
    assert endpoint.sql == sql
    assert stored.status == EndpointStatus.DRAFT


def test_bad_parameters_are_refused_and_nothing_changes(make_draft):
    endpoint = make_draft()
    before = GeneratedEndpoint.objects.get(pk=endpoint.pk)
    parameters = {"type": "object", "properties": {"limit": {"type": "integer"}}}

    with pytest.raises(EndpointError) as caught:
        endpoint_update_draft(endpoint=endpoint, parameters=parameters, docs="changed")

    assert caught.value.field == "parameters"
    after = GeneratedEndpoint.objects.get(pk=endpoint.pk)
    assert (after.parameters, after.docs) == (before.parameters, before.docs)


def test_a_field_that_is_not_part_of_a_draft_is_refused(make_draft):
    endpoint = make_draft()
    with pytest.raises(EndpointError) as caught:
        endpoint_update_draft(endpoint=endpoint, status=EndpointStatus.DEPLOYED)
    assert caught.value.field == "status"
    assert GeneratedEndpoint.objects.get(pk=endpoint.pk).status == EndpointStatus.DRAFT


def test_an_approved_endpoint_is_never_changed(make_draft, owner):
    endpoint = make_draft()
    endpoint_approve(endpoint=endpoint, user=owner, comment="Looks right.")
    stale = GeneratedEndpoint.objects.get(pk=endpoint.pk)

    with pytest.raises(EndpointError) as caught:
        endpoint_update_draft(endpoint=stale, sql="SELECT 1 AS one")

    assert caught.value.code == "conflict"
    assert GeneratedEndpoint.objects.get(pk=endpoint.pk).sql == endpoint.sql
