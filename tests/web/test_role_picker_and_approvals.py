"""The Role picker remembers each user's own last Role; approvals reach owners and admins, decisions the member."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from agents.events import event_append
from agents.models import AgentStatus
from endpoints.services import endpoint_approve, endpoint_deploy, endpoint_reject
from mcpservers.services import mcp_enable
from roles.models import Role
from tests.web.conftest import login
from web.models import Notification, NotificationKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def aardvark_role(org, owner, demo_service):
    """A role whose name sorts first, created after the analyst's: it must never become anyone's default."""
    role = Role.objects.create(
        organization=org, service=demo_service, name="Aardvark audit", permissions=[], mcp_enabled=True
    )
    mcp_enable(role=role)
    return role


def _selected_role(page: str) -> str | None:
    import re

    match = re.search(r'<option value="([0-9a-f-]+)"[^>]*selected', page)
    return match.group(1) if match else None


def test_the_role_picker_has_no_default_until_the_user_chooses(client, member, analyst_role, aardvark_role):
    page = login(client, member).get(reverse("requirement-new")).text
    assert _selected_role(page) is None
    assert "Choose a role…" in page
    assert "Sales analyst — Demo shop (SQLite)" in page


def test_the_role_picker_remembers_each_users_own_last_role(client, member, owner, analyst_role, aardvark_role):
    login(client, member).post(
        reverse("requirement-new"), {"requirement": "Customers in the EU", "role": analyst_role.pk}
    )
    assert _selected_role(client.get(reverse("requirement-new")).text) == str(analyst_role.pk)
    client.logout()
    login(client, owner).post(reverse("requirement-new"), {"requirement": "Audit", "role": aardvark_role.pk})
    assert _selected_role(client.get(reverse("requirement-new")).text) == str(aardvark_role.pk)
    client.logout()
    # The owner's choice did not change the member's.
    assert _selected_role(login(client, member).get(reverse("requirement-new")).text) == str(analyst_role.pk)


def test_a_single_role_is_preselected(client, member, analyst_role):
    assert _selected_role(login(client, member).get(reverse("requirement-new")).text) == str(analyst_role.pk)


def _finish(execution, endpoint):
    event_append(
        execution=execution,
        kind="status",
        payload={"status": AgentStatus.COMPLETED, "endpoint": {"id": str(endpoint.pk), "status": endpoint.status}},
    )


def test_a_finished_draft_notifies_owners_and_admins_and_shows_in_their_navigation(
    client, member, owner, admin_member, completed, settings
):
    settings.NOTIFY_BY_EMAIL = True
    endpoint = completed.endpoints.get()
    notices = Notification.objects.filter(kind=NotificationKind.APPROVAL_NEEDED, endpoint=endpoint)
    assert {n.user for n in notices} == {owner, admin_member}
    page = login(client, owner).get(reverse("home")).text
    assert 'id="nav-approvals"' in page and 'title="1 waiting for review"' in page
    listing = client.get(reverse("approvals")).text
    assert "eu-customers" in listing and reverse("execution-detail", args=[completed.pk]) in listing


def test_emails_go_out_when_email_is_configured(member, owner, completed, settings, django_capture_on_commit_callbacks):
    settings.NOTIFY_BY_EMAIL = True
    endpoint = completed.endpoints.get()
    with django_capture_on_commit_callbacks(execute=True):
        _finish(completed, endpoint)
    assert any(owner.email in m.to and "waits for your approval" in m.subject for m in mail.outbox)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_reject(endpoint=endpoint, user=owner, comment="Leave out the email column")
    assert [m.to for m in mail.outbox] == [[member.email]]
    assert "Leave out the email column" in mail.outbox[0].body


def test_no_email_without_email_settings(member, owner, completed, settings, django_capture_on_commit_callbacks):
    settings.NOTIFY_BY_EMAIL = False
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_approve(endpoint=completed.endpoints.get(), user=owner)
    assert mail.outbox == []
    assert Notification.objects.filter(user=member, kind=NotificationKind.APPROVED).exists()


def test_members_see_no_approvals_list(client, member, completed):
    page = login(client, member).get(reverse("home")).text
    assert 'id="nav-approvals"' not in page
    assert client.get(reverse("approvals")).status_code == 403


def test_the_member_hears_the_decision_and_reads_it(client, member, owner, completed):
    endpoint = completed.endpoints.get()
    endpoint = endpoint_approve(endpoint=endpoint, user=owner)
    endpoint_deploy(endpoint=endpoint, user=owner)
    kinds = set(Notification.objects.filter(user=member).values_list("kind", flat=True))
    assert kinds == {NotificationKind.APPROVED, NotificationKind.DEPLOYED}
    page = login(client, member).get(reverse("notifications")).text
    assert "eu-customers v1 was approved by olivia" in page and "eu-customers v1 is live" in page
    assert "2 unread" in client.get(reverse("home")).text
    first = Notification.objects.filter(user=member).first()
    opened = client.post(reverse("notification-open", args=[first.pk]))
    assert opened.status_code == 302 and opened["Location"] == reverse("execution-detail", args=[completed.pk])
    client.post(reverse("notifications"))
    assert not Notification.objects.filter(user=member, read_at__isnull=True).exists()


def test_nobody_opens_or_reads_another_users_notification(client, member, owner, outsider, completed):
    endpoint_approve(endpoint=completed.endpoints.get(), user=owner)
    theirs = Notification.objects.get(user=member, kind=NotificationKind.APPROVED)
    login(client, outsider)
    assert client.post(reverse("notification-open", args=[theirs.pk])).status_code == 404
    client.post(reverse("notifications"), {"id": [str(theirs.pk)]})
    theirs.refresh_from_db()
    assert theirs.read_at is None
