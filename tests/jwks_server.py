"""A real HTTP server on 127.0.0.1 that plays an identity provider's JWKS endpoint.

Tests set what it answers (a JWK Set, a status, a raw body, a redirect, a hang) and
read how often it was asked.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    hang: bool = False
    #: When set, the answer waits until the test sets the event.
    gate: threading.Event | None = None
    #: When set, writes the whole answer itself (e.g. a body that never ends).
    write: Callable[[BaseHTTPRequestHandler], None] | None = None


class JwksServer:
    """Serves ``self.answer`` at every path and counts requests in ``self.hits``."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.answer = Answer()
        self.release = threading.Event()
        self.hit_event = threading.Event()
        #: Paths answered with a 302 to the given location.
        self.redirects: dict[str, str] = {}
        self._lock = threading.Lock()
        self._open = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with server._lock:
                    server.hits.append(self.path)
                    answer = server.answer
                server.hit_event.set()
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if answer.hang:
                    server.release.wait(timeout=30)
                    return
                if answer.gate is not None:
                    answer.gate.wait(timeout=30)
                try:
                    self._send(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading, as it should past a size cap

            def _send(self, answer: Answer) -> None:
                if answer.write is not None:
                    answer.write(self)
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> JwksServer:
        self._thread.start()
        self._open = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening: from now on, connections are refused."""
        if self._open:
            self._open = False
            self.release.set()
            self._server.shutdown()
            self._server.server_close()

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    def serve_keys(self, *jwks: dict[str, Any]) -> None:
        self.serve_json({"keys": list(jwks)})

    def serve_json(self, document: Any) -> None:
        self.answer = Answer(body=json.dumps(document).encode())

    def serve(self, status: int = 200, body: bytes = b"", **headers: str) -> None:
        self.answer = Answer(status=status, body=body, headers=headers)

    def redirect(self, location: str, status: int = 302) -> None:
        self.answer = Answer(status=status, headers={"Location": location})

    def jwks_hits(self) -> int:
        return sum(1 for hit in self.hits if hit.startswith("/.well-known/jwks.json"))
