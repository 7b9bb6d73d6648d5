"""Personal tokens, the caller's organization, and the one error body of every 4xx."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api.models import PersonalToken
from roles.models import Membership, MembershipRole
from tests.api.conftest import errors_of
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_user_exchanges_username_and_password_for_a_token_that_authenticates_requests(owner):
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": "olivia", "password": PASSWORD}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "olivia"
    assert body["organizations"] == [{"slug": "acme", "name": "Acme Retail", "role": "owner"}]
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/v1/me/").json()["organization"]["slug"] == "acme"


def test_issuing_a_token_again_gives_a_new_named_one_and_the_first_keeps_working(owner):
    client = APIClient()
    first = client.post("/api/v1/auth/token/", {"username": "olivia", "password": PASSWORD}, format="json").json()
    second = client.post(
        "/api/v1/auth/token/", {"username": "olivia", "password": PASSWORD, "name": "CI"}, format="json"
    ).json()
    assert first["token"] != second["token"] and second["name"] == "CI"
    for secret in (first["token"], second["token"]):
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
        assert client.get("/api/v1/me/").status_code == 200
    stored = PersonalToken.objects.filter(user=owner)
    assert stored.count() == 2
    assert all(second["token"] not in (t.key_hash, t.prefix, t.name) for t in stored), "stored hashed only"


def test_wrong_credentials_get_a_400_with_the_error_body_and_no_token(owner):
    response = APIClient().post("/api/v1/auth/token/", {"username": "olivia", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert errors_of(response) == [
        {"field": None, "message": "Unable to sign in with these credentials.", "code": "invalid_credentials"}
    ]
    assert not PersonalToken.objects.filter(user=owner).exists()


def test_a_missing_password_names_the_field(owner):
    response = APIClient().post("/api/v1/auth/token/", {"username": "olivia"}, format="json")
    assert response.status_code == 400
    assert errors_of(response) == [{"field": "password", "message": "This field is required.", "code": "required"}]


def test_delete_revokes_the_callers_token_and_only_that_one(owner_client, owner):
    _, other = PersonalToken.issue(user=owner, name="another script")
    assert owner_client.delete("/api/v1/auth/token/").status_code == 204
    assert owner_client.get("/api/v1/me/").status_code == 401
    assert PersonalToken.objects.filter(user=owner, revoked_at__isnull=True).count() == 1
    owner_client.credentials(HTTP_AUTHORIZATION=f"Token {other}")
    assert owner_client.get("/api/v1/me/").status_code == 200


def test_anonymous_callers_get_401_with_the_error_body():
    response = APIClient().get("/api/v1/services/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert errors_of(response)[0]["code"] == "not_authenticated"


def test_an_invalid_token_gets_401_with_the_error_body():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/services/")
    assert response.status_code == 401
    assert errors_of(response)[0]["code"] == "authentication_failed"


def test_session_login_works_for_the_browser(client, owner):
    assert client.login(username="olivia", password=PASSWORD)
    assert client.get("/api/v1/me/").json()["username"] == "olivia"


def test_a_user_of_several_organizations_selects_one_by_header_or_query(owner, other_org):
    Membership.objects.create(user=owner, organization=other_org, role=MembershipRole.MEMBER)
    client = APIClient()
    client.force_authenticate(owner)
    assert client.get("/api/v1/me/").json()["organization"]["slug"] == "acme"
    by_header = client.get("/api/v1/me/", HTTP_X_NECTAR_ORGANIZATION="globex").json()
    assert by_header["organization"] == {"slug": "globex", "name": "Globex", "role": "member"}
    assert client.get("/api/v1/me/?org=globex").json()["organization"]["slug"] == "globex"


def test_an_organization_the_caller_does_not_belong_to_is_404(owner_client, other_org):
    response = owner_client.get("/api/v1/services/", HTTP_X_NECTAR_ORGANIZATION="globex")
    assert response.status_code == 404
    assert errors_of(response)[0]["code"] == "not_found"


def test_a_user_without_any_organization_is_refused_with_403(django_user_model):
    user = django_user_model.objects.create_user(username="nobody", password=PASSWORD)
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/v1/services/")
    assert response.status_code == 403
    assert errors_of(response)[0]["code"] == "no_organization"


def test_an_unsupported_method_gets_405_with_the_error_body(owner_client):
    response = owner_client.put("/api/v1/metrics/", {}, format="json")
    assert response.status_code == 405
    assert errors_of(response)[0]["code"] == "method_not_allowed"


def test_malformed_json_gets_400_with_the_error_body(owner_client):
    response = owner_client.post("/api/v1/services/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert errors_of(response)[0]["code"] == "parse_error"


def test_text_the_database_cannot_store_is_refused_with_the_field_named(owner_client):
    response = owner_client.post(
        "/api/v1/services/",
        {"name": "x", "engine": "sqlite", "database": "a", "options": {"k": "a\x00b"}},
        format="json",
    )
    assert response.status_code == 400
    assert errors_of(response)[0]["field"] == "options.k"


def test_too_many_requests_get_429_with_retry_after_and_the_error_body(owner_client, monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min", "anon": "2/min"})
    statuses = [owner_client.get("/api/v1/me/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = owner_client.get("/api/v1/me/")
    assert int(response["Retry-After"]) > 0
    assert errors_of(response)[0]["code"] == "throttled"


def test_pages_are_capped_and_an_unknown_page_is_404(owner_client, org):
    from roles.models import Service

    for n in range(3):
        Service.objects.create(organization=org, name=f"db{n}", engine="sqlite", database=f"/tmp/none{n}")
    body = owner_client.get("/api/v1/services/?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert len(owner_client.get("/api/v1/services/?page_size=100000").json()["results"]) == 3
    response = owner_client.get("/api/v1/services/?page=99")
    assert response.status_code == 404
    assert errors_of(response)[0]["code"] == "not_found"


def test_the_schema_and_its_pages_are_served(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert "tokenAuth" in document["components"]["securitySchemes"]
    assert "ErrorBody" in document["components"]["schemas"]
    submit = document["paths"]["/api/v1/executions/"]["post"]["responses"]
    assert "202" in submit and "403" in submit
    swagger = client.get("/api/v1/docs/")
    assert swagger.status_code == 200 and "/static/drf_spectacular_sidecar/swagger-ui-dist/" in swagger.content.decode()
    redoc = client.get("/api/v1/redoc/")
    assert redoc.status_code == 200 and "/static/drf_spectacular_sidecar/redoc/" in redoc.content.decode()
