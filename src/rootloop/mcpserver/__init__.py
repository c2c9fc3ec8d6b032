"""rootloop's MCP server: ``build_server(ServerConfig(maps=[...]))`` → an SDK ``MCPServer``."""

from rootloop.mcpserver.server import ACTION_TOOLS, READ_TOOLS, build_server
from rootloop.mcpserver.toolbox import ServerConfig, Toolbox

__all__ = ["ACTION_TOOLS", "READ_TOOLS", "ServerConfig", "Toolbox", "build_server"]
