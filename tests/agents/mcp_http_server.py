"""A small MCP server over streamable HTTP for tests: ``python mcp_http_server.py PORT``."""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("shop")


@server.tool()
def stock(item: str) -> str:
    """How many of an item are in stock."""
    return f"{item}: 12 left"


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
