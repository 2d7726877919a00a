"""A deliberately broken MCP server for tests (stdio, JSON-RPC written by hand).

Tools: ``echo`` answers; ``die`` exits mid-call; ``garbage`` writes a line that is not
JSON-RPC instead of its answer; ``hang`` never answers. ``--die-at-start`` exits before
the handshake; ``--garbage-at-start`` answers the handshake with garbage.
"""

import json
import os
import sys
import time

TOOLS = [
    {"name": n, "description": d, "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}
    for n, d in [("echo", "Echo text."), ("die", "Exit mid-call."), ("garbage", "Answer with garbage."),
                 ("hang", "Never answer."), ("env", "The names of its environment variables.")]
]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main():
    if "--die-at-start" in sys.argv:
        os._exit(3)
    for line in sys.stdin:
        request = json.loads(line)
        method, rid = request.get("method"), request.get("id")
        if rid is None:
            continue  # a notification
        if method == "initialize":
            if "--garbage-at-start" in sys.argv:
                sys.stdout.write("<html>not json-rpc</html>\n")
                sys.stdout.flush()
                continue
            send({"jsonrpc": "2.0", "id": rid, "result": {
                "protocolVersion": request["params"]["protocolVersion"],
                "capabilities": {"tools": {}}, "serverInfo": {"name": "broken", "version": "0"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
        elif method == "tools/call":
            name = request["params"]["name"]
            text = (request["params"].get("arguments") or {}).get("text", "")
            if name == "die":
                os._exit(1)
            elif name == "garbage":
                sys.stdout.write("{this is not json-rpc\n")
                sys.stdout.flush()
            elif name == "hang":
                time.sleep(3600)
            elif name == "env":
                text = " ".join(sorted(os.environ))
                send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}})
            else:
                send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": f"echo: {text}"}]}})
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no method {method}"}})


if __name__ == "__main__":
    main()
