#!/usr/bin/python3
"""An OpenAI-compatible chat completions server for models a user's trainer
wrote to directories, as vLLM or llama.cpp would serve them: the request's
`model` is a directory holding model.json ({prompt: answer}); a prompt the
model does not know gets "I don't know". Used by the command backend's tests
(its `endpoint` option). Standard library only.

usage: model_dir_server.py [--key KEY]   (prints its port on the first line)
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = sys.argv[sys.argv.index("--key") + 1] if "--key" in sys.argv else None
STATS = {"chat_completions": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message, type_, code=None):
        self.reply(status, {"error": {"message": message, "type": type_, "param": None,
                                      "code": code}})

    def do_GET(self):
        if self.path == "/_fake/stats":
            with LOCK:
                return self.reply(200, dict(STATS))
        self.error(404, "Unknown request URL: GET %s" % self.path, "invalid_request_error")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path != "/v1/chat/completions":
            return self.error(404, "Unknown request URL: POST %s" % self.path,
                              "invalid_request_error")
        if KEY is not None and self.headers.get("Authorization") != "Bearer " + KEY:
            return self.error(401, "Incorrect API key provided.", "invalid_request_error",
                              "invalid_api_key")
        try:
            body = json.loads(raw)
            model = body["model"]
            prompt = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return self.error(400, "We could not parse the JSON body of your request.",
                              "invalid_request_error")
        path = os.path.join(model, "model.json")
        if not os.path.isfile(path):
            return self.error(404, "The model `%s` does not exist" % model,
                              "invalid_request_error", "model_not_found")
        with open(path) as f:
            table = json.load(f)
        answer = table.get(prompt, "I don't know")
        with LOCK:
            STATS["chat_completions"] += 1
        self.reply(200, {
            "id": "chatcmpl-%d" % STATS["chat_completions"], "object": "chat.completion",
            "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 2,
                      "total_tokens": len(prompt) // 4 + 2}})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
