"""Pages of the MCP servers: ready-to-paste client configuration for an instance."""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from mcpservers.selectors import mcp_instance_get_for_user
from mcpservers.services import instance_server_url


def client_configs(instance, *, key_placeholder: str = "<YOUR_NECTAR_API_KEY>") -> dict:
    """Configuration snippets for Claude Desktop, Cursor and plain HTTP."""
    url = instance.server_url or instance_server_url(instance)
    name = f"nectar-{instance.role.name}".lower().replace(" ", "-")
    manage = str(settings.BASE_DIR / "manage.py")
    claude = {
        "mcpServers": {
            name: {
                "command": sys.executable,
                "args": [manage, "mcp_stdio", "--instance", str(instance.id)],
                "env": {"NECTAR_MCP_KEY": key_placeholder},
            }
        }
    }
    claude_remote = {
        "mcpServers": {
            name: {
                "command": "npx",
                "args": ["-y", "mcp-remote", url, "--header", f"Authorization: Bearer {key_placeholder}"],
            }
        }
    }
    cursor = {"mcpServers": {name: {"url": url, "headers": {"Authorization": f"Bearer {key_placeholder}"}}}}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "curl", "version": "1.0"},
        },
    }
    curl = (
        f"curl -sS -X POST '{url}' \\\n"
        f"  -H 'Authorization: Bearer {key_placeholder}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -H 'Accept: application/json, text/event-stream' \\\n"
        f"  -d '{json.dumps(initialize)}'"
    )
    return {
        "url": url,
        "claude_desktop": json.dumps(claude, indent=2),
        "claude_desktop_remote": json.dumps(claude_remote, indent=2),
        "cursor": json.dumps(cursor, indent=2),
        "curl": curl,
    }


@login_required
def instance_client_config(request, instance_id):
    instance = mcp_instance_get_for_user(user=request.user, instance_id=instance_id)
    return render(
        request,
        "mcpservers/client_config.html",
        {"instance": instance, "configs": client_configs(instance), "tool_count": len(instance.tools or [])},
    )
