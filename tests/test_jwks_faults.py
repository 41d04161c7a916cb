"""Identity-provider faults, each played by a real HTTP server on 127.0.0.1 and seen
through a protected view: the last good keys serve until they are ``max_stale`` old,
a process without keys answers 503 with ``Retry-After``, never a 500, and every
failure is logged with its cause and without the token."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support import bearer

TTL, COOLDOWN, MAX_STALE = 600, 30, 3600
Respond = Callable[[BaseHTTPRequestHandler], None]


class Provider:
    """Answers every GET with ``self.respond`` and counts the requests."""

    def __init__(self) -> None:
        self.hits = 0
        self.respond: Respond = answer(404, b"")
        self.release = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.hits += 1
                try:
                    provider.respond(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.jwks_uri = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self._open = True

    def serve_keys(self, *jwks: dict[str, Any]) -> None:
        self.respond = answer(200, json.dumps({"keys": list(jwks)}).encode())

    def close(self) -> None:
        """Stop listening: from now on, connections are refused."""
        if self._open:
            self._open = False
            self.release.set()
            self._server.shutdown()
            self._server.server_close()


def answer(
    status: int, body: bytes, content_type: str = "application/json", **headers: str
) -> Respond:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@dataclass(frozen=True)
class Fault:
    name: str
    #: Makes the provider misbehave; gets the provider and a second, healthy server.
    apply: Callable[[Provider, Provider], None]
    #: What the warning must say.
    cause: str

    def __str__(self) -> str:
        return self.name


def responds(
    status: int, body: bytes, content_type: str = "application/json", **headers: str
) -> Callable[[Provider, Provider], None]:
    """A fault that is one fixed answer."""

    def apply(provider: Provider, other: Provider) -> None:
        provider.respond = answer(status, body, content_type, **headers)

    return apply


def _hang(provider: Provider, other: Provider) -> None:
    provider.respond = lambda handler: provider.release.wait(timeout=10)


def _stream_forever(provider: Provider, other: Provider) -> None:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.0"
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()  # no Content-Length: the body ends when the server says so
        handler.wfile.write(b'{"keys": [], "padding": "')
        for _ in range(2048):  # up to 32 MiB, far past the cap
            handler.wfile.write(b"x" * 16384)

    provider.respond = respond


def _redirect_to_other_host(provider: Provider, other: Provider) -> None:
    other_uri = other.jwks_uri.replace("127.0.0.1", "localhost")
    provider.respond = answer(302, b"", Location=other_uri)


def _unsupported_keys(provider: Provider, other: Provider) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    weak_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(weak)) | {"kid": "weak"}
    document = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"},
            weak_jwk,
            {"kty": "PQC", "kid": "future", "x": "AAAA"},
        ]
    }
    provider.respond = answer(200, json.dumps(document).encode())


NOT_JSON = "the body is not JSON (Content-Type: "
NO_USABLE_KEY = "the JWK Set holds no usable signing key"
FAULTS = [
    Fault("connection-refused", lambda p, o: p.close(), "could not connect (Connection refused)"),
    Fault("timeout", _hang, "timed out"),
    Fault("http-500", responds(500, b"{}"), "HTTP 500"),
    Fault("http-502-html", responds(502, b"<h1>Bad Gateway</h1>", "text/html"), "HTTP 502"),
    Fault("http-503", responds(503, b"", **{"Retry-After": "120"}), "HTTP 503"),
    Fault("html-page", responds(200, b"<html>Down</html>", "text/html"), NOT_JSON + "text/html)"),
    Fault("invalid-json", responds(200, b'{"keys": [{"kty":'), NOT_JSON + "application/json)"),
    Fault("json-without-keys", responds(200, b'{"issuer": "x"}'), "the document is not a JWK Set"),
    Fault("empty-key-set", responds(200, b'{"keys": []}'), NO_USABLE_KEY),
    Fault(
        "declared-body-over-cap", responds(200, b" " * 300_000), "the body is over the size cap"
    ),
    Fault("streamed-body-over-cap", _stream_forever, "the body is over the size cap"),
    Fault(
        "redirect-to-another-host",
        _redirect_to_other_host,
        "redirected to another host (localhost)",
    ),
    Fault("redirect-to-bad-url", responds(302, b"", Location="http://[::1"), "an invalid URL"),
    Fault(
        "unsupported-key-types", _unsupported_keys, NO_USABLE_KEY + " (key types: PQC, RSA, oct)"
    ),
]


@pytest.fixture
def provider(signing_keys) -> Iterator[Provider]:
    server = Provider()
    server.serve_keys(signing_keys[0].jwk)
    yield server
    server.close()


@pytest.fixture
def other(signing_keys) -> Iterator[Provider]:
    """A healthy server on another host name, the target of the redirect fault."""
    server = Provider()
    server.serve_keys(signing_keys[0].jwk)
    yield server
    server.close()


@pytest.fixture
def client(make_app, provider) -> Any:
    app = make_app(
        AUTH0_JWKS_URI=provider.jwks_uri,
        JWKS_CACHE_TTL=TTL,
        JWKS_REFRESH_COOLDOWN=COOLDOWN,
        JWKS_MAX_STALE=MAX_STALE,
        JWKS_FETCH_TIMEOUT=0.5,
    )
    return app.test_client()


def assert_unavailable(response: Any, retry_after: int) -> None:
    assert response.status_code == 503
    assert response.get_json() == {"error": "temporarily_unavailable"}
    assert response.headers["Retry-After"] == str(retry_after)
    assert "WWW-Authenticate" not in response.headers


def assert_logged_without_token(caplog: Any, cause: str, token: str) -> None:
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("could not refresh the signing keys" in w and cause in w for w in warnings), (
        warnings
    )
    assert not any(record.levelno >= logging.ERROR for record in caplog.records)
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_without_keys_a_fault_answers_503_until_the_cooldown_ends(
    fault, client, provider, other, mint, clock, caplog
):
    fault.apply(provider, other)
    token = mint()

    assert_unavailable(client.get("/private", headers=bearer(token)), retry_after=COOLDOWN)
    clock.advance(12)
    assert_unavailable(client.get("/private", headers=bearer(token)), retry_after=COOLDOWN - 12)
    # One attempt (none reaches a closed port), and no second within the cooldown.
    assert provider.hits == (0 if fault.name == "connection-refused" else 1)
    assert other.hits == 0
    assert_logged_without_token(caplog, fault.cause, token)


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_a_fault_keeps_the_last_good_keys_until_they_are_max_stale(
    fault, client, provider, other, mint, clock, caplog
):
    token = mint()
    assert client.get("/private", headers=bearer(token)).status_code == 200
    fault.apply(provider, other)

    clock.advance(TTL)  # stale: the refresh fails, the old keys serve
    assert client.get("/private", headers=bearer(token)).status_code == 200
    assert_logged_without_token(caplog, fault.cause, token)
    clock.advance(MAX_STALE - TTL)  # exactly max_stale old: still served
    fresh_token = mint()
    assert client.get("/private", headers=bearer(fresh_token)).status_code == 200

    clock.advance(1)  # too old now; the attempt made a second ago failed
    assert_unavailable(
        client.get("/private", headers=bearer(fresh_token)), retry_after=COOLDOWN - 1
    )
    assert other.hits == 0
