"""Django admin: staff see and edit only their own organization's objects; superusers see all."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from roles.models import Engine, Role, Service
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def services(org, other_org):
    ours = Service.objects.create(
        organization=org, name="acme-crm", engine=Engine.POSTGRESQL, host="db", database="crm", password="pw-acme"
    )
    theirs = Service.objects.create(
        organization=other_org, name="globex-erp", engine=Engine.POSTGRESQL, host="db", database="erp"
    )
    return ours, theirs


def _login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_staff_sees_only_their_organizations_services(client, owner, services):
    page = _login(client, owner).get(reverse("admin:roles_service_changelist"))
    assert page.status_code == 200
    assert "acme-crm" in page.content.decode()
    assert "globex-erp" not in page.content.decode()


def test_outsider_cannot_open_or_change_another_organizations_object(client, outsider, services):
    ours, _ = services
    _login(client, outsider)
    change_url = reverse("admin:roles_service_change", args=[ours.pk])
    response = client.get(change_url)
    assert response.status_code in (302, 404)
    response = client.post(change_url, {"name": "stolen"})
    assert response.status_code in (302, 403, 404)
    ours.refresh_from_db()
    assert ours.name == "acme-crm"


def test_outsider_sees_nothing_of_another_organization_anywhere(client, outsider, owner, services, org):
    Role.objects.create(organization=org, service=services[0], name="acme-analyst")
    _login(client, outsider)
    for name in ("roles_service", "roles_role", "roles_organization", "roles_membership"):
        page = client.get(reverse(f"admin:{name}_changelist")).content.decode()
        assert "acme" not in page.lower()


def test_member_may_view_but_not_change(client, member, services):
    ours, _ = services
    _login(client, member)
    assert client.get(reverse("admin:roles_service_changelist")).status_code == 200
    response = client.post(reverse("admin:roles_service_change", args=[ours.pk]), {"name": "renamed"})
    assert response.status_code == 403
    ours.refresh_from_db()
    assert ours.name == "acme-crm"


def test_foreign_key_choices_offer_only_own_organization(client, owner, services):
    page = _login(client, owner).get(reverse("admin:roles_role_add")).content.decode()
    assert "acme-crm" in page
    assert "globex-erp" not in page
    assert "Globex" not in page


def test_service_password_is_never_shown_in_admin(client, owner, services):
    ours, _ = services
    page = _login(client, owner).get(reverse("admin:roles_service_change", args=[ours.pk])).content.decode()
    assert "pw-acme" not in page
    assert Service.objects.get(pk=ours.pk).password == "pw-acme"


def test_superuser_sees_every_organization(client, services):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    page = _login(client, get_user_model().objects.get(username="root")).get(reverse("admin:roles_service_changelist"))
    body = page.content.decode()
    assert "acme-crm" in body and "globex-erp" in body
