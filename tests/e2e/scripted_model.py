#!/usr/bin/env python3
"""A scripted OpenAI-compatible chat model for the e2e agent turn, on this machine's loopback
only (the VM reaches it at qemu's host address, through its egress proxy).

  scripted_model.py PORT COMMAND LOG

The first completion of a turn asks for one `exec` tool call running COMMAND; once the request
carries the tool's result, it answers "scripted turn done". Every request is appended to LOG as
one JSON line (the tools offered and the tool results received), so the test can check what the
tool printed inside its container. Prints "ready" once the port is bound.
"""

import http.server
import json
import sys
import time

PORT, COMMAND, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def reply(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(200, json.dumps({"object": "list", "data": [{"id": "scripted", "object": "model"}]}).encode())

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        messages = request.get("messages", [])
        # This turn's tool results: those after the last user message.
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        results = [m.get("content") for m in messages[last_user + 1:] if m.get("role") == "tool"]
        with open(LOG, "a", encoding="utf-8") as f:
            offered = [t.get("function", {}).get("name") for t in request.get("tools", [])]
            f.write(json.dumps({"path": self.path, "tools": offered, "tool_results": results}) + "\n")
        if results:
            delta, finish = {"role": "assistant", "content": "scripted turn done"}, "stop"
        else:
            call = {"name": "exec", "arguments": json.dumps({"command": COMMAND})}
            delta = {"role": "assistant", "content": None,
                     "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": call}]}
            finish = "tool_calls"
        base = {"id": "chatcmpl-e2e", "created": int(time.time()), "model": request.get("model", "scripted")}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if not request.get("stream"):
            choice = {"index": 0, "message": delta, "finish_reason": finish}
            self.reply(200, json.dumps({**base, "object": "chat.completion", "choices": [choice], "usage": usage}).encode())
            return
        chunks = [
            {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
             "usage": usage},
        ]
        body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
        self.reply(200, body, "text/event-stream")


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
