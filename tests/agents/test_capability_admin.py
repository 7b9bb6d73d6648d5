"""The model capabilities page in admin: superusers only, and probing again from there."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from agents.models import ModelCapability
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BASE_URL = "http://10.1.2.3:8000/v1"


@pytest.fixture
def capability():
    return ModelCapability.objects.create(
        provider_kind="openai",
        base_url=BASE_URL,
        model="internal-llm",
        json_schema=False,
        tool_calling=True,
        failures={"json_schema": "response_format json_schema is not supported"},
    )


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


def test_organization_staff_cannot_see_the_platform_wide_model_list(client, owner, capability):
    owner.is_staff = True
    owner.save()
    assert client.login(username=owner.username, password=PASSWORD)

    assert client.get(reverse("admin:agents_modelcapability_changelist")).status_code == 403
    assert client.get(reverse("admin:agents_modelcapability_change", args=[capability.pk])).status_code == 403
    assert BASE_URL not in client.get(reverse("admin:index")).content.decode()


def test_a_superuser_sees_what_each_model_can_do_and_what_the_server_said(client, superuser, capability):
    assert client.login(username="root", password=PASSWORD)

    page = client.get(reverse("admin:agents_modelcapability_change", args=[capability.pk])).content.decode()

    assert "internal-llm" in page
    assert "response_format json_schema is not supported" in page


def test_probing_a_model_no_configuration_uses_any_more_explains_why_and_changes_nothing(
    client, superuser, capability, settings
):
    settings.LLM_PROVIDER = "offline"
    assert client.login(username="root", password=PASSWORD)

    response = client.post(
        reverse("admin:agents_modelcapability_changelist"),
        {"action": "probe_again", "_selected_action": [capability.pk]},
        follow=True,
    )

    assert "neither the platform settings nor any organization uses" in response.content.decode()
    capability.refresh_from_db()
    assert capability.json_schema is False and capability.probed_at is None
