"""Each memory takes the Role of the run it came from (a child agent run: its orchestration's) and its Service."""

from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce


def backfill_from_source_execution(apps, schema_editor):
    """Each memory takes the Role of the run it came from (a child agent run: its orchestration's) and its Service."""
    AgentMemory = apps.get_model("learning", "AgentMemory")
    AgentExecution = apps.get_model("agents", "AgentExecution")
    Role = apps.get_model("roles", "Role")
    run_role = AgentExecution.objects.filter(pk=OuterRef("source_execution_id")).values(
        role_or_parent=Coalesce("role_id", "parent__role_id")
    )[:1]
    AgentMemory.objects.filter(source_execution__isnull=False, role__isnull=True).update(role_id=Subquery(run_role))
    role_service = Role.objects.filter(pk=OuterRef("role_id")).values("service_id")[:1]
    AgentMemory.objects.filter(role__isnull=False, service__isnull=True).update(service_id=Subquery(role_service))


class Migration(migrations.Migration):
    dependencies = [("learning", "0003_memory_service_role"), ("agents", "0002_execution_event_seq")]

    operations = [migrations.RunPython(backfill_from_source_execution, migrations.RunPython.noop)]
