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
