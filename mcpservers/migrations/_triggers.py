"""SQL of the triggers that announce changes of what the hot-path caches hold (see nectar.invalidation).

Each changed row sends NOTIFY nectar_invalidate with its organization's id, at commit. Updates
that touch only bookkeeping columns (usage timestamps, counters) are not announced. Kept out of
the numbered migrations (the leading underscore) so that several migrations can share it.
"""

FUNCTION = """
CREATE OR REPLACE FUNCTION nectar_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_json jsonb;
    ignored text[] := COALESCE(TG_ARGV[1:TG_NARGS - 1], ARRAY[]::text[]);
    org text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_json := to_jsonb(OLD);
    ELSE
        row_json := to_jsonb(NEW);
    END IF;
    IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - ignored) = (to_jsonb(OLD) - ignored) THEN
        RETURN NULL;
    END IF;
    IF TG_ARGV[0] = 'self' THEN
        org := row_json ->> 'id';
    ELSIF TG_ARGV[0] = 'organization' THEN
        org := row_json ->> 'organization_id';
    ELSIF TG_ARGV[0] = 'role' THEN
        SELECT r.organization_id::text INTO org FROM roles_role r WHERE r.id = (row_json ->> 'role_id')::uuid;
    END IF;
    PERFORM pg_notify('nectar_invalidate', COALESCE(org, '*'));
    RETURN NULL;
END
$$;
"""

MCP_TRIGGERS = [
    ("roles_organization", "self", ["updated_at"]),
    ("roles_service", "organization", ["schema_refreshed_at"]),
    ("roles_role", "organization", ["mcp_tools_generated", "updated_at"]),
    ("roles_roleapikey", "role", ["last_used_at"]),
    (
        "mcpservers_mcpserverinstance",
        "role",
        ["request_count", "avg_response_time", "last_health_check", "updated_at"],
    ),
]


def trigger_sql(table: str, how: str, ignored: list[str]) -> str:
    arguments = ", ".join(f"'{a}'" for a in [how, *ignored])
    return (
        f"CREATE TRIGGER {table}_notify_change AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION nectar_notify_change({arguments});"
    )


def drop_sql(table: str) -> str:
    return f"DROP TRIGGER IF EXISTS {table}_notify_change ON {table};"
