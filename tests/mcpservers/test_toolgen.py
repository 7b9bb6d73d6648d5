"""Tool generation details that are easiest to see without a server: names, schemas and hints."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from mcpservers.toolgen import (
    TOOL_NAME_RE,
    is_compact,
    sanitize_identifier,
    tool_public,
    tools_from_grants,
    tools_listed,
)
from roles.permissions import Grant

COLUMNS = [
    {
        "name": "id",
        "type": "integer",
        "json_type": "integer",
        "format": None,
        "nullable": False,
        "default": "nextval('x')",
        "primary_key": True,
        "enum": None,
    },
    {
        "name": "state",
        "type": "status",
        "json_type": "string",
        "format": None,
        "nullable": False,
        "default": None,
        "primary_key": False,
        "enum": ["open", "closed"],
    },
    {
        "name": "placed at",
        "type": "timestamptz",
        "json_type": "string",
        "format": "date-time",
        "nullable": True,
        "default": None,
        "primary_key": False,
        "enum": None,
    },
]


def _grant(name, schema="public", kind="table", actions=("SELECT",), allowed=None, row_filter=None, obj=None):
    obj = obj or {"schema": schema, "name": name, "kind": kind, "columns": COLUMNS, "primary_key": ["id"]}
    return Grant(schema, name, kind, frozenset(actions), allowed, row_filter or {}, obj)


def test_odd_identifiers_become_valid_tool_names():
    tools = tools_from_grants([_grant("Order Lines (2024)!"), _grant("x" * 200)])
    assert all(TOOL_NAME_RE.match(t["name"]) for t in tools)
    assert "query_Order_Lines_2024" in {t["name"] for t in tools}
    assert sanitize_identifier("ÄÖ") == "object"


def test_colliding_names_are_schema_qualified_and_unique():
    tools = tools_from_grants([_grant("orders", "public"), _grant("orders", "sales"), _grant("Orders!", "public")])
    names = [t["name"] for t in tools]
    assert len(names) == len(set(names))
    assert {"query_public__orders", "query_sales__orders"} <= set(names)


def test_only_granted_actions_and_allowed_columns_appear():
    grant = _grant("orders", actions=("SELECT", "DELETE"), allowed=("id", "state"), row_filter={"state": "open"})
    tools = {t["name"]: t for t in tools_from_grants([grant])}
    assert set(tools) == {"query_orders", "analyze_orders_schema", "delete_orders"}
    assert "Columns: id integer pk; state status =open|closed." in tools["query_orders"]["description"]
    assert "placed at" not in tools["query_orders"]["description"]
    assert "state = 'open'" in tools["query_orders"]["description"]
    assert tools["delete_orders"]["inputSchema"]["required"] == ["filters"]
    assert tools["delete_orders"]["annotations"]["idempotentHint"] is True
    assert tools["delete_orders"]["annotations"]["destructiveHint"] is True


def test_write_tools_are_small_and_portable_too():
    import json
    import statistics

    tools = tools_from_grants([_grant("orders", actions=("SELECT", "INSERT", "UPDATE", "DELETE"))])
    public = {t["name"]: json.dumps(tool_public(t), separators=(",", ":")) for t in tools}
    assert set(public) == {"query_orders", "analyze_orders_schema", "insert_orders", "update_orders", "delete_orders"}
    assert all("$defs" not in text and "$ref" not in text for text in public.values())
    assert '"type":[' not in "".join(public.values())  # one type per schema: portable (Inspector --strict)
    sizes = [len(text) for text in public.values()]
    assert statistics.median(sizes) <= 600 and max(sizes) <= 1000, {n: len(t) for n, t in public.items()}
    delete = Draft202012Validator(tools[-1]["inputSchema"])
    assert not delete.is_valid({}) and not delete.is_valid({"filters": {}}) and not delete.is_valid({"filters": []})
    assert delete.is_valid({"filters": {"state": "open"}})


def test_query_tools_are_small_and_portable_and_write_schemas_stay_typed():
    import json
    import statistics

    read_only = tools_from_grants([_grant("orders")])
    sizes = [len(json.dumps({k: v for k, v in t.items() if k != "binding"}, separators=(",", ":"))) for t in read_only]
    assert statistics.median(sizes) <= 600 and max(sizes) <= 1000
    tools = {t["name"]: t for t in tools_from_grants([_grant("orders", actions=("SELECT", "INSERT", "UPDATE"))])}
    query = tools["query_orders"]
    public = json.dumps({k: v for k, v in query.items() if k != "binding"})
    assert "$defs" not in public and "$ref" not in public
    validator = Draft202012Validator(query["inputSchema"])
    assert validator.is_valid({"filters": [{"column": "state", "op": "eq", "value": "open"}]})
    assert validator.is_valid({"filters": [{"or": [{"column": "id", "op": "between", "value": [1, 5]}]}]})
    assert validator.is_valid({"filters": {"state": "open"}})
    assert not validator.is_valid({"limit": 10**9})
    assert not validator.is_valid({"where": "1=1"})
    insert = tools["insert_orders"]["inputSchema"]["properties"]["rows"]["items"]
    assert insert["required"] == ["state"]
    assert insert["properties"]["placed at"]["anyOf"] == [{"type": "string", "format": "date-time"}, {"type": "null"}]
    rows = Draft202012Validator(tools["insert_orders"]["inputSchema"])
    assert rows.is_valid({"rows": [{"state": "open", "placed at": None}]})
    assert not rows.is_valid({"rows": [{"state": "lost"}]}) and not rows.is_valid({"rows": [{"id": 1}]})
    update = Draft202012Validator(tools["update_orders"]["inputSchema"])
    assert not update.is_valid({"values": {"state": "open"}, "filters": []})
    assert update.is_valid({"values": {"placed at": None}, "filters": {"id": 1}})


def test_foreign_keys_are_hinted_only_towards_readable_objects():
    linked = {
        "schema": "public",
        "name": "lines",
        "kind": "table",
        "columns": COLUMNS,
        "foreign_keys": [
            {"columns": ["id"], "ref_schema": "public", "ref_table": "orders", "ref_columns": ["id"]},
            {"columns": ["state"], "ref_schema": "public", "ref_table": "secrets", "ref_columns": ["code"]},
        ],
    }
    tools = {t["name"]: t for t in tools_from_grants([_grant("lines", obj=linked), _grant("orders")])}
    description = tools["query_lines"]["description"]
    assert "id integer pk ->orders.id" in description
    assert "secrets" not in description


def test_procedures_get_execute_and_signature_tools_with_typed_parameters():
    proc = {
        "schema": "public",
        "name": "bump",
        "kind": "procedure",
        "columns": [],
        "arguments": [
            {
                "name": "p_id",
                "type": "integer",
                "json_type": "integer",
                "format": None,
                "mode": "IN",
                "has_default": False,
            },
            {
                "name": "p_note",
                "type": "text",
                "json_type": "string",
                "format": None,
                "mode": "IN",
                "has_default": True,
            },
            {
                "name": "result",
                "type": "integer",
                "json_type": "integer",
                "format": None,
                "mode": "OUT",
                "has_default": False,
            },
        ],
        "returns": None,
        "returns_set": False,
    }
    tools = {
        t["name"]: t for t in tools_from_grants([_grant("bump", kind="procedure", actions=("EXECUTE",), obj=proc)])
    }
    params = tools["execute_bump"]["inputSchema"]["properties"]["parameters"]
    assert set(params["properties"]) == {"p_id", "p_note"}
    assert params["required"] == ["p_id"]
    assert tools["analyze_bump_signature"]["annotations"]["readOnlyHint"] is True


def test_large_catalogs_list_only_the_fixed_and_meta_tools(settings):
    settings.MCP_COMPACT_THRESHOLD = 3
    tools = tools_from_grants([_grant(f"t{i}") for i in range(4)])
    assert is_compact(tools)
    assert [t["name"] for t in tools_listed(tools)] == [
        "search_objects",
        "describe_object",
        "sample_rows",
        "search_tools",
        "describe_tool",
        "call_tool",
    ]
    assert [t["name"] for t in tools_listed(tools, try_sql=True)][3] == "try_sql"
    assert all("binding" not in t for t in tools_listed(tools[:2] if not is_compact(tools[:2]) else []))


def test_compact_call_tool_is_read_only_when_the_role_only_reads(settings):
    settings.MCP_COMPACT_THRESHOLD = 3
    read = {t["name"]: t for t in tools_listed(tools_from_grants([_grant(f"t{i}") for i in range(4)]))}
    assert read["call_tool"]["annotations"]["readOnlyHint"] is True
    writes = tools_from_grants([_grant(f"t{i}", actions=("SELECT", "DELETE")) for i in range(4)])
    assert {t["name"]: t for t in tools_listed(writes)}["call_tool"]["annotations"]["readOnlyHint"] is False
