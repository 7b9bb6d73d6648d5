"""The access helpers every view, API, consumer and MCP handler reads through.

A member reads their organization's rows; an outsider gets 404 for one row and nothing in a list;
naming an organization narrows a list to it, and naming someone else's organization yields nothing.
"""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from agents.models import AgentExecution
from agents.selectors import execution_get_for_user, executions_for_user
from endpoints.models import EndpointStatus, GeneratedEndpoint
from endpoints.selectors import endpoint_get_for_user, endpoints_deployed_describe, endpoints_for_user
from endpoints.services import endpoint_create_draft
from learning.models import MemoryType
from learning.selectors import memories_for_user, memory_get_for_user
from learning.services import memory_create
from mcpservers.models import MCPServerInstance
from mcpservers.platform import endpoints_list
from mcpservers.selectors import mcp_instance_get_for_user, mcp_instances_for_user
from roles.models import Role, RoleApiKey, Service
from roles.selectors import (
    memberships_for_user,
    role_api_keys_for_user,
    role_get_for_user,
    roles_for_user,
    service_get_for_user,
    services_for_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(org, owner, tmp_path):
    service = Service.objects.create(
        organization=org, name="Shop", engine="sqlite", database=str(tmp_path / "shop.sqlite3"), schema_cache={}
    )
    role = Role.objects.create(organization=org, service=service, name="Analyst", permissions=[])
    RoleApiKey.issue(role=role, name="integration")
    instance = MCPServerInstance.objects.create(role=role, server_url="/mcp/x/")
    execution = AgentExecution.objects.create(business_requirement="orders per day", organization=org, user=owner)
    endpoint = endpoint_create_draft(organization=org, role=role, slug="orders-per-day", sql="SELECT 1 AS one")
    memory = memory_create(organization=org, type=MemoryType.BUSINESS_RULE, content="fiscal year starts in April")
    return {
        "service": service,
        "role": role,
        "instance": instance,
        "execution": execution,
        "endpoint": endpoint,
        "memory": memory,
    }


def _getters(rows, user, organization=None):
    return {
        "service": lambda: service_get_for_user(user=user, service_id=rows["service"].pk, organization=organization),
        "role": lambda: role_get_for_user(user=user, role_id=rows["role"].pk, organization=organization),
        "instance": lambda: mcp_instance_get_for_user(user=user, instance_id=rows["instance"].pk),
        "execution": lambda: execution_get_for_user(
            user=user, execution_id=rows["execution"].pk, organization=organization
        ),
        "endpoint": lambda: endpoint_get_for_user(user=user, endpoint_id=rows["endpoint"].pk),
        "memory": lambda: memory_get_for_user(user=user, memory_id=rows["memory"].pk, organization=organization),
    }


def _lists(user, organization=None):
    return {
        "service": services_for_user(user=user, organization=organization),
        "role": roles_for_user(user=user, organization=organization),
        "instance": mcp_instances_for_user(user=user, organization=organization),
        "execution": executions_for_user(user=user, organization=organization),
        "endpoint": endpoints_for_user(user=user, organization=organization),
        "memory": memories_for_user(user=user, organization=organization),
    }


def test_a_member_reads_every_row_of_their_organization(rows, member, org):
    for name, get in _getters(rows, member, org).items():
        assert get().pk == rows[name].pk, name
    for name, queryset in _lists(member, org).items():
        assert [r.pk for r in queryset] == [rows[name].pk], name
    assert [k.role_id for k in role_api_keys_for_user(user=member, role_id=rows["role"].pk)] == [rows["role"].pk]


def test_an_outsider_gets_404_for_each_row_and_empty_lists(rows, outsider):
    for name, get in _getters(rows, outsider).items():
        with pytest.raises(Http404):
            get()
        assert not _lists(outsider)[name].exists(), name
    with pytest.raises(Http404):
        role_api_keys_for_user(user=outsider, role_id=rows["role"].pk)


def test_naming_another_organization_hides_even_a_members_own_rows(rows, member, other_org):
    for name, queryset in _lists(member, other_org).items():
        assert not queryset.exists(), name
    with pytest.raises(Http404):
        role_get_for_user(user=member, role_id=rows["role"].pk, organization=other_org)


def test_malformed_ids_are_answered_like_unknown_ones(rows, member):
    with pytest.raises(Http404):
        role_get_for_user(user=member, role_id="not-a-number")
    with pytest.raises(Http404):
        memory_get_for_user(user=member, memory_id="not-a-uuid")


def test_memberships_list_the_users_organizations_and_nothing_for_anonymous(member, org):
    assert [m.organization for m in memberships_for_user(user=member)] == [org]
    assert not memberships_for_user(user=AnonymousUser()).exists()


def test_existing_apis_lists_deployed_endpoints_through_the_registered_reader(rows, org):
    assert endpoints_list(organization=org)["endpoints"] == []
    # Deployment itself (validation against the customer database) is tested in tests/endpoints.
    GeneratedEndpoint.objects.filter(pk=rows["endpoint"].pk).update(status=EndpointStatus.DEPLOYED)

    listed = endpoints_list(organization=org, query="orders")["endpoints"]

    assert [(e["slug"], e["version"], e["path"]) for e in listed] == [
        ("orders-per-day", 1, "/api/v1/x/acme/orders-per-day/v1")
    ]
    assert endpoints_list(organization=org, query="refunds")["endpoints"] == []
    assert endpoints_deployed_describe(organization=rows["role"].organization) == listed
