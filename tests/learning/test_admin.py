import pytest

from learning.improvement import improvement_run
from learning.models import AgentMemory
from learning.services import memory_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_admin_enters_a_business_rule_that_is_embedded_on_save(client, org, admin_member):
    client.login(username=admin_member.username, password=PASSWORD)
    form = client.get("/admin/learning/agentmemory/add/")
    assert form.status_code == 200
    assert f'value="{org.pk}" selected' in form.content.decode()
    response = client.post(
        "/admin/learning/agentmemory/add/",
        {
            "organization": org.pk,
            "type": "BUSINESS_RULE",
            "content": "Revenue is reported net of tax",
            "tags": "finance,revenue",
            "relevance_score": "0.7",
            "is_active": "on",
            "uses-TOTAL_FORMS": "0",
            "uses-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    memory = AgentMemory.objects.get()
    assert memory.type == "BUSINESS_RULE" and memory.tags == ["finance", "revenue"]
    assert memory.embedding is not None and memory.embedder == "local-hash-v1"


def test_admin_searches_memories_by_text_and_tag_within_the_organization(client, org, other_org, admin_member):
    memory_create(
        organization=org, type="API_PATTERN", content="late shipments by carrier", tags=["object:public.shipments"]
    )
    memory_create(organization=other_org, type="API_PATTERN", content="late shipments secret of globex")
    client.login(username=admin_member.username, password=PASSWORD)
    page = client.get("/admin/learning/agentmemory/", {"q": "late shipments"}).content.decode()
    assert "late shipments by carrier" in page and "globex" not in page
    page = client.get("/admin/learning/agentmemory/", {"q": "object:public.shipments"}).content.decode()
    assert "late shipments by carrier" in page


def test_improvement_report_lists_its_changes_readably(admin_client, org):
    memory_create(organization=org, type="API_PATTERN", content="Top customers by revenue", relevance_score=0.9)
    memory_create(organization=org, type="API_PATTERN", content="Top customers by revenue!", relevance_score=0.2)
    report = improvement_run(organization=org)
    page = admin_client.get(f"/admin/learning/improvementreport/{report.pk}/change/").content.decode()
    assert "merged" in page and "cosine similarity" in page
