"""Docs (Markdown page, OpenAPI schema) and the standalone export of generated endpoints."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from endpoints.services import endpoint_export, endpoint_markdown_docs
from tests.conftest import PASSWORD


def test_markdown_docs_have_parameters_and_runnable_examples(deployed):
    endpoint = deployed()
    text = endpoint_markdown_docs(endpoint=endpoint)
    url = f"{settings.PUBLIC_BASE_URL}/api/v1/x/acme/customers-by-region"
    assert f"`{url}`" in text and f"{url}/v1" in text
    assert "| `region` | string | yes |" in text and "one of `EU`" in text
    assert f'curl -H "Authorization: Bearer $NECTAR_API_KEY" "{url}?region=EU"' in text
    assert "httpx.get(" in text and "'region': 'EU'" in text
    assert "| `customer_id` | integer |" in text


def test_members_see_the_docs_page_and_outsiders_get_404(client, deployed, member, outsider):
    endpoint = deployed()
    page = f"/api/v1/x/-/docs/{endpoint.pk}"
    client.login(username=member.username, password=PASSWORD)
    response = client.get(page)
    assert response.status_code == 200 and b"customers-by-region" in response.content and b"curl" in response.content
    client.logout()
    client.login(username=outsider.username, password=PASSWORD)
    assert client.get(page).status_code == 404
    assert client.get(f"/api/v1/x/-/export/{endpoint.pk}").status_code == 404


def _export(endpoint) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(endpoint_export(endpoint=endpoint))) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_the_export_holds_a_view_urls_tests_and_readme_that_compile(deployed):
    files = _export(deployed())
    root = "customers-by-region-v1/"
    names = {name.removeprefix(root) for name in files}
    assert {
        "README.md",
        "requirements.txt",
        "conftest.py",
        "customers_by_region_v1/views.py",
        "customers_by_region_v1/urls.py",
        "customers_by_region_v1/tests/test_customers_by_region_v1.py",
    } <= names
    for name, text in files.items():
        if name.endswith(".py"):
            compile(text, name, "exec")
    view = files[root + "customers_by_region_v1/views.py"]
    assert "sa.text(" in view and 'os.environ.get("DATABASE_URL")' in view
    assert (
        "region = serializers.ChoiceField(choices=['EU', 'UK', 'NA', 'APAC', 'LATAM'], help_text='Sales region')"
        in view
    )


def test_the_exported_tests_pass_against_the_database(deployed, tmp_path, demo_path):
    files = _export(deployed())
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "NECTAR_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["DATABASE_URL"] = f"sqlite:///{demo_path}"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path / "customers-by-region-v1",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_openapi_schema_describes_each_deployed_endpoint(deployed, make_draft):
    deployed()
    deployed()
    make_draft()  # a draft is not published
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    current = paths["/api/v1/x/acme/customers-by-region"]["get"]
    assert "/api/v1/x/acme/customers-by-region/v1" in paths and "/api/v1/x/acme/customers-by-region/v2" in paths
    assert "/api/v1/x/acme/customers-by-region/v3" not in paths
    region = next(p for p in current["parameters"] if p["name"] == "region")
    assert region["required"] is True and region["schema"]["enum"] == ["EU", "UK", "NA", "APAC", "LATAM"]
    assert set(current["responses"]) == {"200", "400", "401", "403", "404", "410", "429"}
    results = current["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["results"]
    row = schema["components"]["schemas"][results["items"]["$ref"].rsplit("/", 1)[1]]
    assert row["properties"]["customer_id"] == {"type": "integer"}
    assert schema["components"]["securitySchemes"]["RoleApiKey"]["scheme"] == "bearer"
    assert current["security"] == [{"RoleApiKey": []}]


def test_the_platform_schema_url_shows_a_user_only_their_organizations_endpoints(client, deployed, owner, outsider):
    deployed()
    for user, visible in ((owner, True), (outsider, False)):
        client.force_login(user)
        response = client.get("/api/v1/schema/", {"format": "json"})
        assert response.status_code == 200
        assert ("/api/v1/x/acme/customers-by-region" in response.json()["paths"]) is visible
        client.logout()


def test_each_organization_has_a_valid_openapi_document_of_its_deployed_endpoints(client, deployed, make_draft, member):
    from openapi_spec_validator import validate

    deployed()
    deployed()
    make_draft()  # a draft is not published
    client.force_login(member)
    response = client.get("/api/v1/x/acme/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    paths = document["paths"]
    assert {"/api/v1/x/acme/customers-by-region", "/api/v1/x/acme/customers-by-region/v1"} <= set(paths)
    assert "/api/v1/x/acme/customers-by-region/v2" in paths and "/api/v1/x/acme/customers-by-region/v3" not in paths
    current = paths["/api/v1/x/acme/customers-by-region"]["get"]
    assert current["security"] == [{"RoleApiKey": []}]
    assert document["components"]["securitySchemes"]["RoleApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the endpoint's role (nk_...).",
    }
    assert any(p["name"] == "region" and p["required"] for p in current["parameters"])
    assert document["servers"] == [{"url": settings.PUBLIC_BASE_URL}]


def test_an_empty_organization_document_is_valid_too(client, member):
    from openapi_spec_validator import validate

    client.force_login(member)
    document = client.get("/api/v1/x/acme/openapi.json").json()
    validate(document)
    assert document["paths"] == {}


def test_the_organization_document_is_for_its_members_and_its_role_keys_only(
    client, deployed, outsider, api_key, other_org
):
    from roles.models import Role, RoleApiKey, Service

    deployed()
    assert client.get("/api/v1/x/acme/openapi.json", HTTP_AUTHORIZATION=f"Bearer {api_key}").status_code == 200
    client.force_login(outsider)
    assert client.get("/api/v1/x/acme/openapi.json").status_code == 404
    assert client.get("/api/v1/x/-/swagger/acme/").status_code == 404
    client.logout()
    service = Service.objects.create(organization=other_org, name="Theirs", engine="sqlite", database="/tmp/x.db")
    theirs = Role.objects.create(organization=other_org, service=service, name="Their role", permissions=[])
    foreign_key = RoleApiKey.issue(role=theirs, name="theirs")[1]
    assert client.get("/api/v1/x/acme/openapi.json", HTTP_AUTHORIZATION=f"Bearer {foreign_key}").status_code == 404
    assert client.get("/api/v1/x/acme/openapi.json").status_code in (401, 403)


def test_swagger_ui_loads_the_organization_document_with_assets_served_by_nectar(client, deployed, member):
    deployed()
    client.force_login(member)
    page = client.get("/api/v1/x/-/swagger/acme/").content.decode()
    assert "/api/v1/x/acme/openapi.json" in page
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


def test_the_docs_page_is_rendered_html_with_the_source_html_escaped(client, deployed, member):
    endpoint = deployed(docs="Counts <script>alert(1)</script> customers. **Bold** note.")
    client.force_login(member)
    page = client.get(f"/api/v1/x/-/docs/{endpoint.pk}").content.decode()
    assert '<pre class="markdown">' not in page
    assert "<h2>Parameters</h2>" in page and "<table>" in page and "<strong>Bold</strong>" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "/api/v1/x/acme/openapi.json" in page
