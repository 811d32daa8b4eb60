#!/usr/bin/env python3
"""A webhook receiver for tests/cluster/cluster_test.sh: answers every POST with 200 and appends
one JSON line per delivery (arrival time, X-Joule-Alert-Id, the body) to OUT_FILE.
Usage: webhook_receiver.py PORT OUT_FILE"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, out_path = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        line = json.dumps({"t": time.time(), "header_id": self.headers.get("X-Joule-Alert-Id"),
                           "body": payload})
        with lock, open(out_path, "a") as f:
            f.write(line + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
