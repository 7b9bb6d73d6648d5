"""Service and Role admin as an organization owner: connection test, schema refresh, the permission editor."""

from __future__ import annotations

import json

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from roles.models import Role, Service
from tests.roles.conftest import table_perm


def _messages(response) -> str:
    return " | ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_owner_tests_a_connection_from_the_service_list(owner_client, pg_service):
    response = owner_client.post(
        reverse("admin:roles_service_changelist"),
        {"action": "test_connection", "_selected_action": [str(pg_service.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert "connected in" in _messages(response)


def test_test_connection_button_reports_the_precise_reason(owner_client, org):
    service = Service.objects.create(
        organization=org,
        name="wrong pw",
        engine="mysql",
        host="127.0.0.1",
        port=3306,
        username="root",
        password="nope-nope",
        database="mysql",
    )
    response = owner_client.post(reverse("admin:roles_service_test_connection", args=[service.pk]), follow=True)
    text = _messages(response)
    assert "authentication failed" in text and "nope-nope" not in text


def test_refresh_schema_button_stores_the_schema(owner_client, sqlite_service):
    Service.objects.filter(pk=sqlite_service.pk).update(schema_cache=None, schema_refreshed_at=None)
    response = owner_client.post(reverse("admin:roles_service_refresh_schema", args=[sqlite_service.pk]), follow=True)
    assert "schema refreshed" in _messages(response)
    stored = Service.objects.get(pk=sqlite_service.pk)
    assert stored.schema_refreshed_at is not None
    assert any(o["name"] == "customers" for o in stored.schema_cache["objects"])


def test_service_change_page_offers_both_buttons(owner_client, sqlite_service):
    page = owner_client.get(reverse("admin:roles_service_change", args=[sqlite_service.pk])).content.decode()
    assert "Test connection" in page and "Refresh schema" in page


def test_outsider_cannot_test_or_refresh_another_organizations_service(client, outsider, pg_service):
    client.force_login(outsider)
    for name in ("admin:roles_service_test_connection", "admin:roles_service_refresh_schema"):
        assert client.post(reverse(name, args=[pg_service.pk])).status_code == 404
    response = client.post(
        reverse("admin:roles_service_changelist"),
        {"action": "refresh_schema", "_selected_action": [str(pg_service.pk)]},
        follow=True,
    )
    assert "schema refreshed" not in _messages(response)


def _role_post(role: Role, editor: dict) -> dict:
    data = {
        "name": role.name,
        "description": role.description,
        "organization": str(role.organization_id),
        "service": str(role.service_id),
        "is_active": "on",
        "mcp_server_config": "null",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
        "api_keys-MIN_NUM_FORMS": "0",
        "api_keys-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    objects = role.service.schema_cache["objects"]
    for i, obj in enumerate(objects):
        data[f"permissions__{i}__object"] = json.dumps([obj["schema"], obj["name"], obj["kind"]])
        for key, value in editor.get(obj["name"], {}).items():
            data[f"permissions__{i}__{key}"] = value
    return data


def test_permission_editor_lists_objects_actions_and_columns_from_the_live_schema(owner_client, pg_service, make_role):
    role = make_role(pg_service, [table_perm("customers", ["SELECT"], columns={"deny": ["secret"]})])
    page = owner_client.get(reverse("admin:roles_role_change", args=[role.pk])).content.decode()
    assert "nectar-permission-editor" in page
    assert 'value="SELECT" checked' in page and 'value="EXECUTE"' in page
    assert 'value="secret" checked' in page and 'value="deny" selected' in page
    assert "sales.invoices" in page and "MixedCase" in page


def test_owner_grants_actions_columns_and_a_row_filter_by_ticking_boxes(owner_client, pg_service, make_role):
    role = make_role(pg_service, [])
    data = _role_post(
        role,
        {
            "customers": {
                "actions": ["SELECT", "UPDATE"],
                "colmode": "allow",
                "cols": ["id", "name", "region"],
                "rowfilter": '{"region": "EU"}',
            },
            "invoices": {"actions": ["SELECT"]},
            "bump_balance": {"actions": ["EXECUTE"]},
        },
    )
    response = owner_client.post(reverse("admin:roles_role_change", args=[role.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    role.refresh_from_db()
    assert role.permissions == [
        {"objectName": "bump_balance", "schema": "public", "path": "/proc/bump_balance", "actions": ["EXECUTE"]},
        {
            "objectName": "customers",
            "schema": "public",
            "path": "/table/customers",
            "actions": ["SELECT", "UPDATE"],
            "columns": {"allow": ["id", "name", "region"]},
            "rowFilter": {"region": "EU"},
        },
        {"objectName": "invoices", "schema": "sales", "path": "/table/invoices", "actions": ["SELECT"]},
    ]


@pytest.mark.parametrize(
    "editor,expected",
    [
        ({"customers": {"actions": ["SELECT"], "rowfilter": "region = EU"}}, "row filter must be JSON"),
        ({"customers": {"actions": ["SELECT"], "rowfilter": '{"nope": 1}'}}, "Unknown column"),
        ({"customers": {"actions": ["SELECT"], "colmode": "allow"}}, "Allow at least one column"),
        ({"eu_customers": {"actions": ["SELECT", "DELETE"]}}, "not valid for a view"),
    ],
)
def test_permission_editor_shows_validation_errors_and_saves_nothing(
    owner_client, pg_service, make_role, editor, expected
):
    role = make_role(pg_service, [table_perm("orders", ["SELECT"])])
    response = owner_client.post(reverse("admin:roles_role_change", args=[role.pk]), _role_post(role, editor))
    assert response.status_code == 200
    assert expected in response.content.decode()
    role.refresh_from_db()
    assert role.permissions == [table_perm("orders", ["SELECT"])]


def test_outsider_cannot_open_or_change_another_organizations_role(client, outsider, pg_service, make_role):
    role = make_role(pg_service, [])
    client.force_login(outsider)
    response = client.get(reverse("admin:roles_role_change", args=[role.pk]))
    assert response.status_code in (302, 404)
    client.post(
        reverse("admin:roles_role_change", args=[role.pk]), _role_post(role, {"secrets": {"actions": ["SELECT"]}})
    )
    role.refresh_from_db()
    assert role.permissions == []


def test_a_new_role_gets_the_editor_when_its_service_is_chosen_and_saves_ticked_grants(owner_client, pg_service):
    add = reverse("admin:roles_role_add")
    service_page = owner_client.get(reverse("admin:roles_service_change", args=[pg_service.pk])).content.decode()
    assert f"{add}?service={pg_service.pk}" in service_page
    url = f"{add}?service={pg_service.pk}&organization={pg_service.organization_id}"
    assert "nectar-permission-editor" in owner_client.get(url).content.decode()
    draft = Role(name="ticked", organization=pg_service.organization, service=pg_service)
    data = _role_post(draft, {"customers": {"actions": ["SELECT"]}})
    response = owner_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Role.objects.get(name="ticked").permissions == [
        {"objectName": "customers", "schema": "public", "path": "/table/customers", "actions": ["SELECT"]}
    ]


def test_the_add_page_ignores_a_service_of_another_organization(client, outsider, pg_service):
    client.force_login(outsider)
    page = client.get(f"{reverse('admin:roles_role_add')}?service={pg_service.pk}").content.decode()
    assert "nectar-permission-editor" not in page


def _service_post(org, **fields) -> dict:
    data = {
        "organization": str(org.pk),
        "name": "Typed service",
        "engine": "postgresql",
        "host": "",
        "port": "",
        "database": "",
        "username": "",
        "password": "",
        "url": "",
        "options": "{}",
    }
    data.update(fields)
    return data


@pytest.mark.parametrize(
    "fields",
    [
        {"engine": "postgresql", "host": "127.0.0.1", "port": "5432", "database": "postgres", "username": "postgres"},
        {"engine": "mysql", "url": "mysql+pymysql://root@127.0.0.1:3306/mysql"},
        {"engine": "sqlite", "database": "SQLITE_DIR/nectar-admin-test.sqlite3"},
    ],
    ids=["trust-auth-no-password", "url-only", "sqlite"],
)
def test_a_service_saves_without_a_password(owner_client, org, fields, settings):
    # The file must be where the operator allows SQLite files (the suite allows its temporary directory).
    fields = {k: v.replace("SQLITE_DIR", settings.SERVICE_SQLITE_DIR) for k, v in fields.items()}
    response = owner_client.post(reverse("admin:roles_service_add"), {**_service_post(org, **fields), "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:2000]
    service = Service.objects.get(organization=org, name="Typed service")
    assert service.engine == fields["engine"] and service.password == ""
    assert service.url == fields.get("url", "")


def test_test_connection_on_the_add_page_tests_the_typed_values_and_keeps_them(owner_client, org):
    fields = {"engine": "mysql", "host": "127.0.0.1", "port": "3306", "database": "mysql", "username": "root"}
    response = owner_client.post(
        reverse("admin:roles_service_add"), {**_service_post(org, **fields), "_test_connection": "1"}
    )
    assert response.status_code == 200
    assert "connected in" in _messages(response) and "Not saved yet" in _messages(response)
    page = response.content.decode()
    assert 'value="Typed service"' in page and 'value="127.0.0.1"' in page and 'value="3306"' in page
    assert not Service.objects.filter(name="Typed service").exists()


def test_a_failed_test_on_the_add_page_is_a_message_and_keeps_the_typed_password(owner_client, org):
    fields = {
        "engine": "mysql",
        "host": "127.0.0.1",
        "port": "3306",
        "database": "mysql",
        "username": "root",
        "password": "typed-wrong-password",
    }
    response = owner_client.post(
        reverse("admin:roles_service_add"), {**_service_post(org, **fields), "_test_connection": "1"}
    )
    assert response.status_code == 200
    text = _messages(response)
    assert "authentication failed" in text and "typed-wrong-password" not in text
    # The admin who typed it gets it back in the field, so Save works without typing it again.
    assert 'value="typed-wrong-password"' in response.content.decode()
    assert not Service.objects.filter(name="Typed service").exists()


def test_test_connection_on_the_change_page_tests_the_edits_and_keeps_the_stored_service(owner_client, pg_service):
    data = _service_post(
        pg_service.organization,
        name=pg_service.name,
        engine="postgresql",
        host="127.0.0.1",
        port="5432",
        database="no_such_database_here",
        username="postgres",
        _test_connection="1",
    )
    response = owner_client.post(reverse("admin:roles_service_change", args=[pg_service.pk]), data)
    assert response.status_code == 200
    assert "unknown database" in _messages(response)
    assert Service.objects.get(pk=pg_service.pk).database == pg_service.database
    # The stored service itself still connects (its pool was not replaced by the probe).
    ok = owner_client.post(reverse("admin:roles_service_test_connection", args=[pg_service.pk]), follow=True)
    assert "connected in" in _messages(ok)


def test_test_connection_with_missing_fields_names_them_instead_of_failing(owner_client, org):
    response = owner_client.post(
        reverse("admin:roles_service_add"), {**_service_post(org, engine="sqlite"), "_test_connection": "1"}
    )
    assert response.status_code == 200
    assert "SQLite database file" in response.content.decode()
    assert "Correct the fields below" in _messages(response)


def test_the_add_page_offers_test_connection_and_no_dead_link(owner_client):
    page = owner_client.get(reverse("admin:roles_service_add")).content.decode()
    assert 'name="_test_connection"' in page
    assert "/test-connection/" not in page and "Refresh schema" not in page
