"""Announce changes of generated endpoints to the caches of every replica (see nectar.invalidation)."""

from django.db import migrations

from mcpservers.migrations import _triggers


class Migration(migrations.Migration):
    dependencies = [
        ("endpoints", "0001_initial"),
        ("mcpservers", "0003_invalidation_triggers"),
    ]

    operations = [
        migrations.RunSQL(
            _triggers.trigger_sql("endpoints_generatedendpoint", "organization", ["call_count", "avg_latency_ms", "updated_at"]),
            _triggers.drop_sql("endpoints_generatedendpoint"),
        )
    ]
