"""The integrator's whole journey through the API, from connecting a database to calling the endpoint.

The queued pipeline is run synchronously by calling the task function, as a worker would.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents.tasks import run_execution_task
from endpoints.docs import example_params
from endpoints.models import GeneratedEndpoint
from roles.demo.platform import demo_sales_analyst_permissions
from tests.conftest import PASSWORD


def _sqlite_permissions() -> list[dict]:
    """The demo analyst's grants, without procedures (SQLite has none), in SQLite's schema."""
    return [{**g, "schema": "main"} for g in demo_sales_analyst_permissions() if not g["path"].startswith("/proc/")]


@pytest.mark.django_db(transaction=True)
def test_an_integrator_goes_from_a_database_to_a_live_endpoint_through_the_api(owner, demo_path):
    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": "olivia", "password": PASSWORD}, format="json")
    assert token.status_code == 201
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")

    service = client.post(
        "/api/v1/services/", {"name": "Demo shop", "engine": "sqlite", "database": demo_path}, format="json"
    )
    assert service.status_code == 201, service.json()
    service_id = service.json()["id"]
    assert client.post(f"/api/v1/services/{service_id}/test-connection/").json()["ok"] is True
    objects = {o["name"] for o in client.get(f"/api/v1/services/{service_id}/schema/").json()["objects"]}
    assert {"customers", "orders", "products"} <= objects

    role = client.post(
        "/api/v1/roles/",
        {"name": "Sales analyst", "service": service_id, "permissions": _sqlite_permissions()},
        format="json",
    )
    assert role.status_code == 201, role.json()
    role_id = role.json()["id"]
    mcp = client.post(f"/api/v1/roles/{role_id}/mcp/", {"enabled": True}, format="json").json()
    assert mcp["mcp_server"]["status"] == "ACTIVE", mcp
    key = client.post(f"/api/v1/roles/{role_id}/keys/", {"name": "integration"}, format="json").json()

    submitted = client.post(
        "/api/v1/executions/", {"requirement": "Customers in the EU", "role": role_id}, format="json"
    )
    assert submitted.status_code == 202
    execution_id = submitted.json()["id"]
    events_url = submitted.json()["urls"]["events"]

    run_execution_task(execution_id)  # what the django-q worker does with the queued task

    seen, after, finished = [], 0, False
    for _ in range(100):
        page = client.get(events_url, {"after": after}).json()
        seen += page["events"]
        after = page["next_after"]
        if page["finished"] and not page["events"]:
            finished = True
            break
    assert finished
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    execution = client.get(f"/api/v1/executions/{execution_id}/").json()
    assert execution["status"] == "COMPLETED", execution["status_reason"]
    assert {e["phase"] for e in seen if e["kind"] == "phase"} >= {"exploration", "implementation", "testing"}

    listed = client.get("/api/v1/endpoints/", {"source_execution": execution_id}).json()
    assert listed["count"] >= 1
    endpoint = listed["results"][0]
    if endpoint["status"] == "draft":
        approved = client.post(f"/api/v1/endpoints/{endpoint['id']}/approve/", {"comment": "ok"}, format="json")
        assert approved.status_code == 200, approved.json()
    if endpoint["status"] != "deployed":
        deployed = client.post(f"/api/v1/endpoints/{endpoint['id']}/deploy/")
        assert deployed.status_code == 200, deployed.json()
        endpoint = deployed.json()

    params = example_params(GeneratedEndpoint.objects.get(pk=endpoint["id"]))
    live = APIClient().get(endpoint["path"], params, HTTP_AUTHORIZATION=f"Bearer {key['secret']}")
    assert live.status_code == 200, live.json()
    assert live.json()["results"], live.json()

    rated = client.post(f"/api/v1/executions/{execution_id}/rating/", {"up": True}, format="json")
    assert rated.status_code == 200 and rated.json()["rating"] == 1
    metrics = client.get("/api/v1/metrics/").json()
    assert metrics["executions"]["by_status"]["COMPLETED"] == 1
    assert metrics["endpoint_calls"]["total"] == 1
