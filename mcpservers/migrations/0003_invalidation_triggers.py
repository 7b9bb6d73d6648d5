"""Triggers that announce changes of organizations, services, roles, keys and MCP instances."""

from django.db import migrations

from mcpservers.migrations._triggers import FUNCTION, MCP_TRIGGERS, drop_sql, trigger_sql


class Migration(migrations.Migration):
    dependencies = [
        ("mcpservers", "0002_instance_schema_fingerprint"),
        ("roles", "0003_role_mcp_allow_try_sql"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS nectar_notify_change() CASCADE;"),
        *(migrations.RunSQL(trigger_sql(*t), drop_sql(t[0])) for t in MCP_TRIGGERS),
    ]
