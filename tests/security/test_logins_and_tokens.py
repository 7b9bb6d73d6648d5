"""Logins are throttled per account and per address (HTML, admin and token logins), and personal API
tokens are named, several per user, stored hashed, shown once and revocable."""

from __future__ import annotations

import hashlib
import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connection
from rest_framework.test import APIClient

from api.models import PersonalToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 5
LOCKED = "Too many failed sign-ins"


def _html_login(client, username, password, ip="10.0.0.1", url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _token_login(username, password, ip="10.0.0.1"):
    return APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_account_and_then_even_the_right_one_is_refused(client, owner, url):
    for _ in range(LIMIT - 1):
        assert _html_login(client, owner.username, "wrong", url=url).status_code == 200
    assert _html_login(client, owner.username, "wrong", url=url).status_code == 429  # the LIMIT-th failure
    locked = _html_login(client, owner.username, PASSWORD, url=url)
    assert locked.status_code == 429
    assert LOCKED in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_address_trying_many_accounts_is_locked_out(client, owner, member):
    for attempt in range(LIMIT):
        _html_login(client, f"nobody{attempt}", "wrong", ip="10.9.9.9")
    assert _html_login(client, member.username, PASSWORD, ip="10.9.9.9").status_code == 429
    # Another address is not affected.
    assert _html_login(client, member.username, PASSWORD, ip="10.1.1.1").status_code == 302


def test_one_account_tried_from_many_addresses_is_locked_out(client, owner):
    for attempt in range(LIMIT):
        _html_login(client, owner.username, "wrong", ip=f"10.0.1.{attempt}")
    assert _html_login(client, owner.username, PASSWORD, ip="10.0.2.1").status_code == 429


def test_the_token_login_is_throttled_with_a_clear_429(owner):
    for _ in range(LIMIT - 1):
        assert _token_login(owner.username, "wrong").status_code == 400
    _token_login(owner.username, "wrong")
    locked = _token_login(owner.username, PASSWORD)
    assert locked.status_code == 429
    (item,) = locked.json()["errors"]
    assert item["code"] == "locked_out" and LOCKED in item["message"]
    assert not PersonalToken.objects.filter(user=owner).exists()


def test_a_successful_login_resets_the_count(client, owner):
    for _ in range(LIMIT - 1):
        _html_login(client, owner.username, "wrong")
    assert _html_login(client, owner.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        _html_login(client, owner.username, "wrong")
    assert _html_login(client, owner.username, PASSWORD).status_code == 302


# --- personal tokens -----------------------------------------------------------------------------


def _api(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_tokens_are_listed_created_and_revoked_through_the_api_without_secrets(owner):
    _, first = PersonalToken.issue(user=owner, name="laptop")
    api = _api(first)
    created = api.post("/api/v1/auth/tokens/", {"name": "nightly export"}, format="json")
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("npt_") and _api(secret).get("/api/v1/me/").status_code == 200
    listed = api.get("/api/v1/auth/tokens/").json()
    assert {t["name"] for t in listed} == {"laptop", "nightly export"}
    assert all("token" not in t for t in listed) and secret not in str(listed)
    assert api.delete(f"/api/v1/auth/tokens/{created.json()['id']}/").status_code == 204
    assert _api(secret).get("/api/v1/me/").status_code == 401
    assert api.get("/api/v1/me/").status_code == 200, "revoking one token leaves the others"
    stored = PersonalToken.objects.get(pk=created.json()["id"])
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in stored.prefix


def test_a_user_cannot_see_or_revoke_another_users_tokens(owner, member):
    theirs, _ = PersonalToken.issue(user=member, name="member script")
    _, mine = PersonalToken.issue(user=owner, name="mine")
    api = _api(mine)
    assert [t["name"] for t in api.get("/api/v1/auth/tokens/").json()] == ["mine"]
    assert api.delete(f"/api/v1/auth/tokens/{theirs.pk}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_the_tokens_page_creates_shows_once_and_revokes(client, owner):
    client.force_login(owner)
    page = client.post("/tokens/", {"action": "create", "name": "report script"})
    assert page.status_code == 200
    token = PersonalToken.objects.get(user=owner, name="report script")
    text = page.content.decode()
    secret = text.split('id="new-token-secret">')[1].split("<")[0]
    assert secret.startswith(f"npt_{token.prefix}_")
    again = client.get("/tokens/").content.decode()
    assert "report script" in again and secret not in again
    revoked = client.post("/tokens/", {"action": "revoke", "token": str(token.pk)})
    assert revoked.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_admin_lists_tokens_without_their_secrets(client, owner, django_user_model):
    _, secret = PersonalToken.issue(user=owner, name="visible name")
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(django_user_model.objects.get(username="root"))
    page = client.get("/admin/api/personaltoken/").content.decode()
    assert "visible name" in page and secret not in page
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_existing_drf_tokens_are_hashed_in_place_and_keep_working(owner):
    from rest_framework.authtoken.models import Token

    legacy = Token.objects.create(user=owner)
    key = legacy.key
    migration = importlib.import_module("api.migrations.0001_personal_tokens")
    migration.hash_existing_tokens(django_apps, connection.schema_editor())
    assert not Token.objects.exists(), "no plain-text token is left"
    stored = PersonalToken.objects.get(user=owner)
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert _api(key).get("/api/v1/me/").status_code == 200
