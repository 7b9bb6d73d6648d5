"""MCP server lifecycle: the admin switch and actions, regeneration, health checks and the schedule."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse
from django_q.models import Schedule

from mcpservers.apps import HEALTH_SCHEDULE_NAME
from mcpservers.models import MCPServerInstance, MCPServerStatus
from mcpservers.services import health_check_all, mcp_disable, tools_regenerate_for_service
from roles.models import Role
from tests.conftest import PASSWORD
from tests.mcpservers.conftest import FULL_PERMISSIONS, READER_PERMISSIONS, make_role

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_enabling_mcp_generates_an_active_instance_with_its_url(org, service, settings):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS)
    instance = MCPServerInstance.objects.get(role=role)
    assert instance.status == MCPServerStatus.ACTIVE
    assert instance.server_url == f"{settings.PUBLIC_BASE_URL}/mcp/{instance.id}/"
    assert len(instance.tools) == 13
    assert role.mcp_tools_generated is not None


def test_a_role_without_mcp_has_no_instance(org, service):
    role = make_role(org, service, "Quiet", FULL_PERMISSIONS, mcp=False)
    assert not MCPServerInstance.objects.filter(role=role).exists()


def test_disabling_retires_and_reenabling_revives(org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS)
    role.mcp_enabled = False
    role.save()
    assert MCPServerInstance.objects.get(role=role).status == MCPServerStatus.INACTIVE
    role.mcp_enabled = True
    role.save()
    assert MCPServerInstance.objects.get(role=role).status == MCPServerStatus.ACTIVE


def test_generation_failure_is_an_error_with_the_reason(org, service):
    service.port = _closed_port()
    service.schema_cache = None
    service.save()
    role = make_role(org, service, "Broken", FULL_PERMISSIONS)
    instance = MCPServerInstance.objects.get(role=role)
    assert instance.status == MCPServerStatus.ERROR
    assert instance.status_reason.startswith("Tool generation failed")


def test_permission_change_regenerates_the_tools(org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS)
    role.permissions = READER_PERMISSIONS
    role.save()
    names = {t["name"] for t in MCPServerInstance.objects.get(role=role).tools}
    assert names == {"query_customers", "analyze_customers_schema"}


def test_schema_hook_regenerates_every_instance_of_the_service(org, service, customer_rows):
    from roles.introspection import service_refresh_schema

    role = make_role(org, service, "Analyst", FULL_PERMISSIONS)
    with customer_rows.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE region_totals RENAME TO region_counts")
    try:
        service_refresh_schema(service=service)
        assert tools_regenerate_for_service(service=service) == 1
        names = {t["name"] for t in MCPServerInstance.objects.get(role=role).tools}
        assert "query_region_totals" not in names
    finally:
        with customer_rows.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE region_counts RENAME TO region_totals")


def test_health_check_flips_to_error_and_back(org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS)
    good_port = service.port
    service.port = _closed_port()
    service.save()
    assert health_check_all() == {"checked": 1, "healthy": 0}
    instance = MCPServerInstance.objects.get(role=role)
    assert instance.status == MCPServerStatus.ERROR
    assert "unreachable" in instance.status_reason
    assert instance.last_health_check is not None
    service.port = good_port
    service.save()
    assert health_check_all() == {"checked": 1, "healthy": 1}
    instance.refresh_from_db()
    assert instance.status == MCPServerStatus.ACTIVE
    assert instance.status_reason == ""


def test_retired_instances_are_not_health_checked(org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS)
    mcp_disable(role=role)
    assert health_check_all() == {"checked": 0, "healthy": 0}


def test_health_check_is_scheduled(settings):
    schedule = Schedule.objects.get(name=HEALTH_SCHEDULE_NAME)
    assert schedule.func == "mcpservers.tasks.health_check_all"
    assert schedule.minutes == settings.MCP_HEALTH_INTERVAL_MINUTES
    from mcpservers.apps import ensure_health_schedule

    ensure_health_schedule()
    assert Schedule.objects.filter(name=HEALTH_SCHEDULE_NAME).count() == 1


def test_admin_list_toggle_enables_mcp(client, owner, org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS, mcp=False)
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(
        reverse("admin:roles_role_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(role.pk),
            "form-0-mcp_enabled": "on",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    assert Role.objects.get(pk=role.pk).mcp_enabled
    assert MCPServerInstance.objects.get(role=role).status == MCPServerStatus.ACTIVE


def test_admin_actions_enable_and_disable_mcp(client, owner, org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS, mcp=False)
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("admin:roles_role_changelist")
    client.post(url, {"action": "enable_mcp", "_selected_action": [str(role.pk)]})
    assert MCPServerInstance.objects.get(role=role).status == MCPServerStatus.ACTIVE
    changelist = client.get(url)
    assert b"Active" in changelist.content
    client.post(url, {"action": "disable_mcp", "_selected_action": [str(role.pk)]})
    assert MCPServerInstance.objects.get(role=role).status == MCPServerStatus.INACTIVE
    assert not Role.objects.get(pk=role.pk).mcp_enabled


def test_outsider_cannot_enable_mcp_through_the_admin(client, outsider, org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS, mcp=False)
    client.login(username=outsider.username, password=PASSWORD)
    client.post(reverse("admin:roles_role_changelist"), {"action": "enable_mcp", "_selected_action": [str(role.pk)]})
    assert not MCPServerInstance.objects.filter(role=role).exists()


def test_client_configuration_page_for_members_and_404_for_outsiders(client, member, outsider, org, service):
    role = make_role(org, service, "Analyst", FULL_PERMISSIONS)
    instance = role.mcp_instance
    url = reverse("mcpservers:client-config", args=[instance.pk])
    client.login(username=member.username, password=PASSWORD)
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "mcpServers" in text and "mcp_stdio" in text and instance.server_url in text
    assert "Authorization: Bearer" in text and "curl" in text
    client.logout()
    client.login(username=outsider.username, password=PASSWORD)
    assert client.get(url).status_code == 404
