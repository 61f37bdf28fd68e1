"""A real HTTP server process that answers every request with garbage, standing in for a broken service.

Run as `python garbage_server.py PORT MODE`; GET /ready answers 200 (so it can be waited for), anything
else 200 with the garbage of MODE (a WebSocket upgrade included: the handshake gets HTML, not a 101).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GARBAGE: dict[str, tuple[str, bytes]] = {
    "html": ("text/html", b"<html><body><h1>Welcome to nginx!</h1></body></html>"),
    "wrong-schema": ("application/json", b'{"status": "ok", "result": [1, 2, 3]}'),
    "malformed-json": ("application/json", b'{"asr_result": "unterminated, "choices": [{'),
}


def handler(mode: str) -> type[BaseHTTPRequestHandler]:
    content_type, body = GARBAGE[mode]

    class Garbage(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            ready = self.path == "/ready"
            self.send_response(200)
            self.send_header("content-type", "application/json" if ready else content_type)
            payload = b"{}" if ready else body
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _answer  # noqa: N815 - http.server's naming
        do_POST = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    return Garbage


if __name__ == "__main__":
    port, mode = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", port), handler(mode)).serve_forever()
