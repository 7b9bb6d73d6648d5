"""Serve one Role's MCP server over stdio, for desktop clients (Claude Desktop, Cursor ...)."""

from __future__ import annotations

import os

import anyio
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from mcpservers.server import instance_server
from mcpservers.services import McpAccessError, instance_authorize


class Command(BaseCommand):
    help = "Serve an MCP server instance over stdio. The API key comes from --key or NECTAR_MCP_KEY."

    def add_arguments(self, parser):
        parser.add_argument("--instance", required=True, help="MCP server instance id")
        parser.add_argument("--key", default=None, help="API key of the instance's role (or set NECTAR_MCP_KEY)")

    def handle(self, *args, instance, key, **options):
        secret = key or os.environ.get("NECTAR_MCP_KEY")
        try:
            server_instance, api_key = instance_authorize(instance_id=instance, secret=secret)
        except McpAccessError as exc:
            raise CommandError(exc.message) from exc
        finally:
            close_old_connections()
        anyio.run(self._serve, server_instance, api_key)

    async def _serve(self, instance, api_key) -> None:
        from mcp.server.stdio import stdio_server

        server = instance_server(instance=instance, api_key=api_key)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
