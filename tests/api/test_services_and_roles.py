"""Services, roles and their API keys through the API: who may do what, and what is never returned."""

from __future__ import annotations

import pytest

from roles.models import Role, RoleApiKey, Service, hash_api_key
from tests.api.conftest import SQLITE_PERMISSIONS, errors_of

pytestmark = pytest.mark.django_db


def test_an_admin_connects_a_database_and_its_password_and_url_are_never_returned(admin_client, org):
    response = admin_client.post(
        "/api/v1/services/",
        {
            "name": "Warehouse",
            "engine": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "database": "warehouse",
            "username": "reader",
            "password": "s3cret-pw",
            "url": "postgresql://reader:s3cret-url@127.0.0.1/warehouse",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert "password" not in created and "url" not in created
    assert created["has_password"] is True and created["has_url"] is True
    service = Service.objects.get(pk=created["id"])
    assert service.organization == org and service.password == "s3cret-pw"
    for url in ("/api/v1/services/", f"/api/v1/services/{service.pk}/"):
        assert "s3cret" not in admin_client.get(url).content.decode()


def test_updating_a_service_without_a_password_keeps_the_stored_one(owner_client, service):
    Service.objects.filter(pk=service.pk).update(password="keep-me")
    response = owner_client.patch(f"/api/v1/services/{service.pk}/", {"username": "bob"}, format="json")
    assert response.status_code == 200
    service.refresh_from_db()
    assert (service.username, service.password) == ("bob", "keep-me")


def test_the_organization_and_timestamps_of_a_service_cannot_be_assigned(owner_client, org, other_org, tmp_path):
    response = owner_client.post(
        "/api/v1/services/",
        {
            "name": "Mine",
            "engine": "sqlite",
            "database": str(tmp_path / "x.sqlite"),
            "organization": str(other_org.pk),
            "schema_refreshed_at": "2020-01-01T00:00:00Z",
            "id": "00000000-0000-0000-0000-000000000001",
        },
        format="json",
    )
    assert response.status_code == 201
    service = Service.objects.get(pk=response.json()["id"])
    assert service.organization == org
    assert service.schema_refreshed_at is None
    assert str(service.pk) != "00000000-0000-0000-0000-000000000001"


def test_a_duplicate_service_name_is_a_field_error(owner_client, service):
    response = owner_client.post(
        "/api/v1/services/", {"name": service.name, "engine": "sqlite", "database": "/tmp/y"}, format="json"
    )
    assert response.status_code == 400
    assert errors_of(response) == [
        {"field": "name", "message": "Your organization already has a service with this name.", "code": "unique"}
    ]


def test_testing_the_connection_and_reading_and_refreshing_the_schema(owner_client, service):
    tested = owner_client.post(f"/api/v1/services/{service.pk}/test-connection/")
    assert tested.status_code == 200
    assert tested.json()["ok"] is True and tested.json()["reason"] == "ok"
    schema = owner_client.get(f"/api/v1/services/{service.pk}/schema/").json()
    assert schema["engine"] == "sqlite"
    assert {"customers", "orders"} <= {o["name"] for o in schema["objects"]}
    refreshed = owner_client.post(f"/api/v1/services/{service.pk}/refresh-schema/")
    assert refreshed.status_code == 200 and refreshed.json()["refreshed_at"]


def test_a_failed_connection_test_says_why(owner_client, org):
    service = Service.objects.create(
        organization=org, name="Down", engine="postgresql", host="127.0.0.1", port=1, database="x", username="x"
    )
    body = owner_client.post(f"/api/v1/services/{service.pk}/test-connection/").json()
    assert body["ok"] is False and body["reason"] == "host_unreachable"


def test_members_may_read_services_but_not_change_or_test_them(member_client, service):
    assert member_client.get(f"/api/v1/services/{service.pk}/").status_code == 200
    for method, url in [
        ("post", "/api/v1/services/"),
        ("patch", f"/api/v1/services/{service.pk}/"),
        ("delete", f"/api/v1/services/{service.pk}/"),
        ("post", f"/api/v1/services/{service.pk}/test-connection/"),
        ("post", f"/api/v1/services/{service.pk}/refresh-schema/"),
    ]:
        response = getattr(member_client, method)(url, {"name": "x"}, format="json")
        assert response.status_code == 403, (method, url)
        assert errors_of(response)[0]["code"] == "permission_denied"
    assert Service.objects.filter(pk=service.pk, name="Demo shop").exists()


def test_another_organizations_services_are_404_to_an_outsider(outsider_client, service):
    for method, url in [
        ("get", f"/api/v1/services/{service.pk}/"),
        ("get", f"/api/v1/services/{service.pk}/schema/"),
        ("patch", f"/api/v1/services/{service.pk}/"),
        ("delete", f"/api/v1/services/{service.pk}/"),
        ("post", f"/api/v1/services/{service.pk}/test-connection/"),
    ]:
        response = getattr(outsider_client, method)(url, {}, format="json")
        assert response.status_code == 404, (method, url)
        assert errors_of(response)[0]["code"] == "not_found"
    assert outsider_client.get("/api/v1/services/").json()["count"] == 0


def test_a_service_in_use_by_a_role_cannot_be_deleted(owner_client, service, role):
    response = owner_client.delete(f"/api/v1/services/{service.pk}/")
    assert response.status_code == 409
    assert errors_of(response)[0]["code"] == "in_use"
    assert Service.objects.filter(pk=service.pk).exists()


def test_an_admin_creates_a_role_whose_permissions_are_validated(admin_client, admin_member, service, org):
    response = admin_client.post(
        "/api/v1/roles/",
        {
            "name": "Analyst",
            "service": str(service.pk),
            "permissions": SQLITE_PERMISSIONS,
            "mcp_enabled": True,
            "mcp_tools_generated": "2020-01-01T00:00:00Z",
            "created_by": "someone-else",
            "organization": "globex",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    role = Role.objects.get(pk=response.json()["id"])
    assert role.organization == org and role.created_by == admin_member
    assert role.mcp_enabled is False and role.mcp_tools_generated is None
    assert response.json()["created_by"] == "adam"


def test_invalid_permissions_are_refused_with_the_entry_and_field_named(owner_client, service):
    response = owner_client.post(
        "/api/v1/roles/",
        {
            "name": "Broken",
            "service": str(service.pk),
            "permissions": [
                SQLITE_PERMISSIONS[0],
                {"objectName": "no_such_table", "path": "/table/no_such_table", "actions": ["SELECT"]},
            ],
        },
        format="json",
    )
    assert response.status_code == 400
    errors = errors_of(response)
    assert errors and all(e["field"].startswith("permissions.1") for e in errors)
    assert not Role.objects.filter(name="Broken").exists()


def test_a_role_cannot_use_another_organizations_service(outsider_client, service):
    response = outsider_client.post(
        "/api/v1/roles/", {"name": "Sneaky", "service": str(service.pk), "permissions": []}, format="json"
    )
    assert response.status_code == 400
    assert errors_of(response)[0]["field"] == "service"


def test_mcp_is_switched_on_and_off(owner_client, role):
    on = owner_client.post(f"/api/v1/roles/{role.pk}/mcp/", {"enabled": True}, format="json")
    assert on.status_code == 200
    assert on.json()["mcp_enabled"] is True and on.json()["mcp_server"]["status"] == "ACTIVE"
    instance_id = on.json()["mcp_server"]["id"]
    detail = owner_client.get(f"/api/v1/mcp-servers/{instance_id}/").json()
    assert detail["tool_count"] > 0 and detail["tools"][0]["name"] and "inputSchema" in detail["tools"][0]
    assert detail["metrics"] == []
    assert owner_client.post(f"/api/v1/mcp-servers/{instance_id}/regenerate/").json()["status"] == "ACTIVE"
    off = owner_client.post(f"/api/v1/roles/{role.pk}/mcp/", {"enabled": False}, format="json")
    assert off.json()["mcp_enabled"] is False and off.json()["mcp_server"]["status"] == "INACTIVE"
    refused = owner_client.post(f"/api/v1/mcp-servers/{instance_id}/regenerate/")
    assert refused.status_code == 409


def test_members_may_read_roles_and_mcp_servers_but_not_manage_them(member_client, role):
    from mcpservers.services import mcp_enable

    instance = mcp_enable(role=role)
    assert member_client.get(f"/api/v1/roles/{role.pk}/").status_code == 200
    assert member_client.get(f"/api/v1/mcp-servers/{instance.pk}/").status_code == 200
    for method, url, data in [
        ("post", "/api/v1/roles/", {"name": "x"}),
        ("patch", f"/api/v1/roles/{role.pk}/", {"name": "x"}),
        ("delete", f"/api/v1/roles/{role.pk}/", {}),
        ("post", f"/api/v1/roles/{role.pk}/mcp/", {"enabled": False}),
        ("post", f"/api/v1/mcp-servers/{instance.pk}/regenerate/", {}),
        ("post", f"/api/v1/roles/{role.pk}/keys/", {"name": "k"}),
    ]:
        assert getattr(member_client, method)(url, data, format="json").status_code == 403, (method, url)
    role.refresh_from_db()
    assert role.name == "Sales analyst" and role.mcp_enabled


def test_another_organizations_roles_keys_and_mcp_servers_are_404(outsider_client, role):
    from mcpservers.services import mcp_enable

    instance = mcp_enable(role=role)
    key, _ = RoleApiKey.issue(role=role, name="k")
    for method, url in [
        ("get", f"/api/v1/roles/{role.pk}/"),
        ("patch", f"/api/v1/roles/{role.pk}/"),
        ("post", f"/api/v1/roles/{role.pk}/mcp/"),
        ("get", f"/api/v1/roles/{role.pk}/keys/"),
        ("post", f"/api/v1/roles/{role.pk}/keys/"),
        ("post", f"/api/v1/roles/{role.pk}/keys/{key.pk}/revoke/"),
        ("get", f"/api/v1/mcp-servers/{instance.pk}/"),
        ("post", f"/api/v1/mcp-servers/{instance.pk}/regenerate/"),
    ]:
        response = getattr(outsider_client, method)(url, {"name": "x", "enabled": False}, format="json")
        assert response.status_code == 404, (method, url)
    assert outsider_client.get("/api/v1/mcp-servers/").json()["count"] == 0
    key.refresh_from_db()
    assert key.revoked_at is None


def test_an_api_key_secret_is_shown_once_then_listed_without_it_and_revoked(owner_client, role):
    created = owner_client.post(f"/api/v1/roles/{role.pk}/keys/", {"name": "Claude Desktop"}, format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("nk_")
    key = RoleApiKey.objects.get(pk=created.json()["id"])
    assert key.key_hash == hash_api_key(secret) and key.role == role
    listed = owner_client.get(f"/api/v1/roles/{role.pk}/keys/")
    assert secret not in listed.content.decode() and "key_hash" not in listed.content.decode()
    assert [k["name"] for k in listed.json()["results"]] == ["Claude Desktop"]
    assert "secret" not in owner_client.get(f"/api/v1/roles/{role.pk}/keys/{key.pk}/").json()
    revoked = owner_client.post(f"/api/v1/roles/{role.pk}/keys/{key.pk}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] and revoked.json()["is_usable"] is False


def test_an_expiry_in_the_past_is_refused(owner_client, role):
    response = owner_client.post(
        f"/api/v1/roles/{role.pk}/keys/", {"name": "old", "expires_at": "2001-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert errors_of(response)[0]["field"] == "expires_at"


def test_lists_filter_and_order(owner_client, org, service):
    for name in ("b-role", "a-role"):
        Role.objects.create(organization=org, service=service, name=name, permissions=[])
    names = [r["name"] for r in owner_client.get("/api/v1/roles/?ordering=-name").json()["results"]]
    assert names == ["b-role", "a-role"]
    assert owner_client.get("/api/v1/roles/?name=a-r").json()["count"] == 1
    assert owner_client.get("/api/v1/roles/?mcp_enabled=true").json()["count"] == 0
    assert owner_client.get("/api/v1/services/?engine=sqlite").json()["count"] == 1
    response = owner_client.get("/api/v1/services/?engine=oracle9")
    assert response.status_code == 400 and errors_of(response)[0]["field"] == "engine"
