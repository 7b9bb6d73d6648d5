"""Leaks closed: admin filters show only the staff's own organizations, database errors come back as codes
and safe messages (the driver's text is logged), and no password reaches a log."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from learning.models import ImprovementReport
from learning.services import memory_create
from roles.executor import ExecutorError, executor_insert, executor_run_sql
from roles.models import Role, Service
from tests.conftest import PASSWORD
from tests.mcpservers.conftest import instance_url, run
from tests.mcpservers.test_http import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_organizations(org, other_org):
    ours = Service.objects.create(organization=org, name="acme-db", engine="sqlite", database="a.db")
    theirs = Service.objects.create(organization=other_org, name="globex-secret-db", engine="sqlite", database="b.db")
    Role.objects.create(organization=other_org, service=theirs, name="globex-secret-role")
    memory_create(organization=org, type="BUSINESS_RULE", content="acme rule", service=ours)
    memory_create(organization=other_org, type="BUSINESS_RULE", content="globex rule", service=theirs)
    ImprovementReport.objects.create(organization=org)
    ImprovementReport.objects.create(organization=other_org)
    return ours, theirs


@pytest.mark.parametrize(
    "changelist",
    [
        "learning_agentmemory",
        "learning_improvementreport",
        "roles_role",
        "roles_service",
        "agents_agentexecution",
        "mcpservers_toolcall",
        "endpoints_generatedendpoint",
        "roles_roleapikey",
        "mcpservers_mcpserverinstance",
    ],
)
def test_staff_see_no_other_organization_in_admin_lists_or_their_filters(client, owner, two_organizations, changelist):
    assert client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse(f"admin:{changelist}_changelist"))
    assert page.status_code == 200
    text = page.content.decode()
    for foreign in ("Globex", "globex-secret-db", "globex-secret-role", "globex rule"):
        assert foreign not in text, f"{foreign} shown on {changelist}"


def test_the_memory_filters_offer_the_staffs_own_organization_and_service(client, owner, two_organizations):
    assert client.login(username=owner.username, password=PASSWORD)
    text = client.get(reverse("admin:learning_agentmemory_changelist")).content.decode()
    assert "Acme Retail" in text and "acme-db" in text


def test_a_superuser_still_sees_every_organization_in_the_filters(client, two_organizations, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    assert client.login(username="root", password=PASSWORD)
    text = client.get(reverse("admin:learning_agentmemory_changelist")).content.decode()
    assert "Globex" in text and "Acme Retail" in text


# --- database errors become codes and safe messages ------------------------------------------------


def test_a_unique_violation_names_neither_the_constraint_nor_the_other_row(analyst, caplog):
    role = analyst["role"]
    with caplog.at_level(logging.WARNING, logger="nectar.database"), pytest.raises(ExecutorError) as refused:
        executor_insert(role=role, object_name="customers", rows=[{"id": 1, "name": "Dup", "region": "EU"}])
    assert refused.value.code == "constraint_violation"
    assert "customers_pkey" not in refused.value.message and "Key (" not in refused.value.message
    assert "unique" in refused.value.message
    assert "customers_pkey" in caplog.text, "the driver's full text is logged server-side"


def test_a_check_violation_is_a_code_and_a_safe_message(analyst):
    from roles.executor import executor_update

    with pytest.raises(ExecutorError) as refused:
        executor_insert(role=analyst["role"], object_name="customers", rows=[{"name": None, "region": "EU"}])
    assert refused.value.code in ("constraint_violation", "invalid_argument")
    assert "violates" not in refused.value.message
    with pytest.raises(ExecutorError):
        executor_update(role=analyst["role"], object_name="customers", values={"region": None}, filters={"id": 1})


def test_a_failing_query_reports_its_sqlstate_class_not_the_drivers_text(analyst):
    with pytest.raises(ExecutorError) as refused:
        executor_run_sql(role=analyst["role"], sql="SELECT 1 / (id - id) AS x FROM customers", params={})
    assert refused.value.code == "invalid_argument"
    assert refused.value.message.endswith("The query divides by zero.")


def test_mcp_clients_see_safe_database_errors(live_mcp, analyst):
    async def scenario():
        async with mcp_client(instance_url(live_mcp, analyst["instance"]), analyst["secret"]) as client:
            return await client.call_tool("insert_customers", {"rows": [{"id": 1, "name": "Dup", "region": "EU"}]})

    result = run(scenario)
    assert result.is_error
    text = result.content[0].text
    assert "customers_pkey" not in text and "duplicate key" not in text and "DETAIL" not in text


def test_a_connection_failure_shows_no_host_path_or_driver_text(owner_api, org):
    service = Service.objects.create(
        organization=org, name="gone", engine="postgresql", host="127.0.0.1", port=1, database="x", username="u"
    )
    response = owner_api.post(f"/api/v1/services/{service.pk}/test-connection/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False and body["reason"] == "host_unreachable"
    assert "127.0.0.1" not in body["detail"] and "port 1" not in body["detail"]
