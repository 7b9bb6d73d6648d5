"""Drafts, validation, tests, review and deployment of generated endpoints."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from endpoints.models import EndpointStatus, GeneratedEndpoint
from endpoints.params import sql_bind_names
from endpoints.services import (
    EndpointError,
    endpoint_approve,
    endpoint_auto_deploy_if_allowed,
    endpoint_create_draft,
    endpoint_deploy,
    endpoint_reject,
    endpoint_run_tests,
    endpoint_validate,
)
from tests.endpoints.conftest import CUSTOMERS_PARAMETERS


def test_a_new_draft_of_an_existing_slug_gets_the_next_version(make_draft):
    first = make_draft()
    second = make_draft()
    assert (first.version, second.version) == (1, 2)
    assert first.status == second.status == EndpointStatus.DRAFT


def test_a_slug_that_is_not_kebab_case_is_refused_and_nothing_is_stored(make_draft):
    with pytest.raises(EndpointError) as caught:
        make_draft(slug="Customers_By_Region")
    assert caught.value.field == "slug"
    assert not GeneratedEndpoint.objects.exists()


def test_a_parameter_named_like_a_paging_argument_is_refused(make_draft):
    parameters = {"type": "object", "properties": {"limit": {"type": "integer"}}}
    with pytest.raises(EndpointError) as caught:
        make_draft(parameters=parameters, sql="SELECT customer_id FROM customers LIMIT :limit")
    assert caught.value.field == "parameters"
    assert "reserved" in caught.value.message


def test_a_role_of_another_organization_is_refused(make_draft, other_org):
    with pytest.raises(EndpointError) as caught:
        make_draft(organization=other_org)
    assert caught.value.code == "forbidden"


def test_bind_names_ignore_literals_comments_and_casts():
    sql = "SELECT ':nope', x::text FROM t -- :comment\nWHERE a = :first AND b = :second AND c = :first"
    assert sql_bind_names(sql) == ["first", "second"]


def test_a_valid_endpoint_passes_validation(make_draft):
    endpoint = make_draft()
    assert endpoint_validate(endpoint=endpoint) == []
    endpoint.refresh_from_db()
    assert endpoint.validation_errors == []


def test_a_bind_without_a_parameter_is_rejected(make_draft):
    endpoint = make_draft(
        sql="SELECT customer_id FROM customers WHERE region = :region AND city = :city AND segment = :segment"
    )
    errors = endpoint_validate(endpoint=endpoint)
    assert any(":city" in e for e in errors), errors


def test_a_parameter_the_sql_never_uses_is_rejected(make_draft):
    endpoint = make_draft(sql="SELECT customer_id FROM customers WHERE region = :region")
    errors = endpoint_validate(endpoint=endpoint)
    assert any("not used" in e and "segment" in e for e in errors), errors


def test_sql_on_a_table_the_role_was_not_granted_is_rejected(make_draft):
    endpoint = make_draft(
        sql="SELECT payment_id FROM payments WHERE method = :region AND (:segment IS NULL OR status = :segment)"
    )
    errors = endpoint_validate(endpoint=endpoint)
    assert errors and "payments" in " ".join(errors), errors


def test_sql_that_writes_is_rejected(make_draft):
    endpoint = make_draft(sql="DELETE FROM customers WHERE region = :region AND segment = :segment")
    errors = endpoint_validate(endpoint=endpoint)
    assert errors and "refused" in errors[0], errors


def test_running_tests_stores_a_result_per_case(make_draft):
    endpoint = make_draft()
    results = endpoint_run_tests(endpoint=endpoint)
    assert results["passed"] is True
    assert [c["name"] for c in results["cases"]] == ["eu customers", "unknown region is refused"]
    assert results["cases"][0]["rows"] > 0
    assert results["cases"][1]["status"] == 400
    endpoint.refresh_from_db()
    assert endpoint.test_results["passed"] is True
    assert endpoint.tests_passed


def test_a_failing_case_says_what_was_wrong(make_draft, demo_sql):
    eu_count = demo_sql("SELECT count(*) AS n FROM customers WHERE region = 'EU'")[0]["n"]
    tests = [
        {"name": "too many", "params": {"region": "EU"}, "expect": {"max_rows": eu_count - 1}},
        {"name": "wrong sample", "params": {"region": "EU"}, "expect": {"sample": {"region": "UK"}}},
        {
            "name": "exact rows",
            "params": {"region": "UK", "segment": "enterprise"},
            "expect": {
                "rows_equal": demo_sql(
                    "SELECT customer_id, first_name, last_name, region, segment FROM customers "
                    "WHERE region = 'UK' AND segment = 'enterprise' ORDER BY customer_id"
                )
            },
        },
    ]
    endpoint = make_draft(tests=tests)
    results = endpoint_run_tests(endpoint=endpoint)
    by_name = {c["name"]: c for c in results["cases"]}
    assert results["passed"] is False and results["failed"] == 2
    assert f"{eu_count} rows, expected at most {eu_count - 1}" in by_name["too many"]["message"]
    assert "no row has region = 'UK'" in by_name["wrong sample"]["message"]
    assert by_name["exact rows"]["passed"], by_name["exact rows"]["message"]


def test_a_member_without_owner_or_admin_rights_cannot_approve(make_draft, member):
    endpoint = make_draft()
    with pytest.raises(PermissionDenied):
        endpoint_approve(endpoint=endpoint, user=member, comment="ok")
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DRAFT and endpoint.reviewed_by is None


def test_an_outsider_cannot_approve(make_draft, outsider):
    endpoint = make_draft()
    with pytest.raises(PermissionDenied):
        endpoint_approve(endpoint=endpoint, user=outsider, comment="ok")


def test_an_admin_approves_with_a_comment(make_draft, admin_member):
    endpoint = endpoint_approve(endpoint=make_draft(), user=admin_member, comment="Checked the joins.")
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.APPROVED
    assert endpoint.reviewed_by == admin_member and endpoint.review_comment == "Checked the joins."


def test_a_rejection_needs_a_reason_and_keeps_the_draft(make_draft, owner):
    endpoint = make_draft()
    with pytest.raises(EndpointError):
        endpoint_reject(endpoint=endpoint, user=owner, comment="  ")
    endpoint_reject(endpoint=endpoint, user=owner, comment="Exposes too many columns.")
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DRAFT
    assert endpoint.review_decision == "rejected" and endpoint.review_comment == "Exposes too many columns."


def test_an_unapproved_endpoint_cannot_be_deployed(make_draft, owner):
    endpoint = make_draft()
    with pytest.raises(EndpointError) as caught:
        endpoint_deploy(endpoint=endpoint, user=owner)
    assert caught.value.code == "not_approved"


def test_an_approved_endpoint_that_fails_validation_is_not_deployed(make_draft, owner):
    endpoint = make_draft(sql="SELECT customer_id FROM customers WHERE region = :region")
    endpoint_approve(endpoint=endpoint, user=owner)
    with pytest.raises(EndpointError) as caught:
        endpoint_deploy(endpoint=endpoint, user=owner)
    assert caught.value.code == "validation_failed"
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.APPROVED


def _verified(endpoint, verdict="verified"):
    endpoint.verification = {"verdict": verdict, "meaning_tests": {"passed": True, "derived": 1}}
    endpoint.save(update_fields=["verification"])
    return endpoint


def test_auto_deploy_needs_the_policy_passing_tests_and_a_verified_design(make_draft, org):
    endpoint = _verified(make_draft())
    endpoint_run_tests(endpoint=endpoint)
    assert endpoint_auto_deploy_if_allowed(endpoint=endpoint) is False  # policy off
    org.auto_deploy_read_only = True
    org.save(update_fields=["auto_deploy_read_only"])
    endpoint.organization.refresh_from_db()
    failing = _verified(
        make_draft(tests=[{"name": "impossible", "params": {"region": "EU"}, "expect": {"max_rows": 0}}])
    )
    endpoint_run_tests(endpoint=failing)
    assert endpoint_auto_deploy_if_allowed(endpoint=failing) is False
    unverified = make_draft()
    endpoint_run_tests(endpoint=unverified)
    assert endpoint_auto_deploy_if_allowed(endpoint=unverified) is False  # nobody checked what it means
    assumed = _verified(make_draft(), verdict="needs_review")
    endpoint_run_tests(endpoint=assumed)
    assert endpoint_auto_deploy_if_allowed(endpoint=assumed) is False  # it rests on an assumption
    assert endpoint_auto_deploy_if_allowed(endpoint=endpoint) is True
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DEPLOYED and endpoint.deployed_at is not None


def test_the_current_version_is_the_highest_deployed_one(deployed, make_draft):
    first = deployed()
    second = deployed()
    make_draft()  # v3 stays a draft
    current = GeneratedEndpoint.objects.current()
    assert list(current) == [second]
    assert set(GeneratedEndpoint.objects.live()) == {first, second}


def test_drafts_may_come_from_an_agent_execution(org, role, owner):
    from agents.models import AgentExecution

    execution = AgentExecution.objects.create(
        business_requirement="EU customers", organization=org, user=owner, role=role
    )
    endpoint = endpoint_create_draft(
        organization=org,
        role=role,
        execution=execution,
        method="GET",
        slug="eu-customers",
        description="EU customers",
        parameters=CUSTOMERS_PARAMETERS,
        sql="SELECT customer_id FROM customers WHERE region = :region AND (:segment IS NULL OR segment = :segment)",
        response_schema={},
        tests=[],
        docs="",
    )
    assert endpoint.source_execution == execution
    assert list(execution.endpoints.all()) == [endpoint]


def test_the_same_name_on_another_role_is_another_endpoint_and_never_replaces_the_first(org, role, owner):
    from endpoints.models import EndpointAlias
    from endpoints.selectors import endpoint_resolve_live
    from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy
    from roles.models import Role

    other = Role.objects.create(
        organization=org, service=role.service, name="Support desk", permissions=role.permissions, created_by=owner
    )
    sql = "SELECT customer_id FROM customers ORDER BY customer_id"
    mine = endpoint_create_draft(organization=org, role=role, slug="customers", sql=sql)
    theirs = endpoint_create_draft(organization=org, role=other, slug="customers", sql=sql)
    again = endpoint_create_draft(organization=org, role=role, slug="customers", sql=sql)
    assert mine.slug == again.slug == "customers" and again.version == 2
    assert theirs.slug == "customers-support-desk" and theirs.version == 1
    for endpoint in (mine, theirs):
        endpoint_deploy(endpoint=endpoint_approve(endpoint=endpoint, user=owner), user=owner)
    assert endpoint_resolve_live(organization_slug=org.slug, slug="customers", role=role).role == role
    assert endpoint_resolve_live(organization_slug=org.slug, slug="customers-support-desk", role=other).role == other
    # An older shared address keeps answering the moved Role's endpoint for that Role's keys.
    EndpointAlias.objects.create(organization=org, slug="customers", role=other, target_slug="customers-support-desk")
    assert endpoint_resolve_live(organization_slug=org.slug, slug="customers", role=other).pk == theirs.pk
    assert endpoint_resolve_live(organization_slug=org.slug, slug="customers", role=role).pk == mine.pk
