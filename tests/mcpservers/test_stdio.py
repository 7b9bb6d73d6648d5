"""The same tools over stdio: `manage.py mcp_stdio` as a subprocess, driven by the official MCP client."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from mcp import Client, StdioServerParameters

from mcpservers.models import ToolCall
from tests.mcpservers.conftest import run
from tests.processes import process_env

pytestmark = pytest.mark.django_db(transaction=True)


def _test_database_url() -> str:
    """The platform database URL, pointed at the pytest test database."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))


def _server(instance_id, *, key: str | None) -> StdioServerParameters:
    # The suite's explicit opt-in to its customer databases on 127.0.0.1 goes to the child too.
    env = process_env(DATABASE_URL=_test_database_url(), LOG_LEVEL="WARNING")
    env.pop("NECTAR_MCP_KEY", None)
    if key:
        env["NECTAR_MCP_KEY"] = key
    return StdioServerParameters(
        command=sys.executable,
        args=[str(settings.BASE_DIR / "manage.py"), "mcp_stdio", "--instance", str(instance_id)],
        env=env,
        cwd=str(settings.BASE_DIR),
    )


def test_stdio_serves_the_roles_tools_and_records_calls(analyst):
    params = _server(analyst["instance"].id, key=analyst["secret"])

    async def scenario():
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("query_customers", {"filters": {"region": "US"}})
            refused = await client.call_tool("drop_customers", {})
            return tools, result, refused

    tools, result, refused = run(scenario)
    assert "query_customers" in tools and "delete_customers" in tools
    assert [r["name"] for r in result.structured_content["rows"]] == ["Bob"]
    assert refused.is_error
    assert ToolCall.objects.get(tool="query_customers").api_key_id == analyst["key"].id


def test_stdio_refuses_a_key_of_another_role(analyst, reader):
    import subprocess

    params = _server(analyst["instance"].id, key=reader["secret"])
    completed = subprocess.run(
        [params.command, *params.args], env=params.env, cwd=params.cwd, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode != 0
    assert "another role" in completed.stderr
