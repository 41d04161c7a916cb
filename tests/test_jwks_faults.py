"""Identity-provider faults, each played by a real HTTP server on 127.0.0.1 and seen
through a protected view: the last good keys serve until they are ``max_stale`` old,
a process without keys answers 503 with ``Retry-After``, never a 500, and every
failure is logged with its cause and without the token."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwks_server import Answer, JwksServer
from support import bearer

TTL, COOLDOWN, MAX_STALE = 600, 30, 3600


@dataclass(frozen=True)
class Fault:
    name: str
    #: Makes the provider misbehave; gets the provider and a second, healthy server.
    apply: Callable[[JwksServer, JwksServer], None]
    #: What the warning must say.
    cause: str

    def __str__(self) -> str:
        return self.name


def responds(
    status: int, body: bytes, content_type: str = "application/json", **headers: str
) -> Callable[[JwksServer, JwksServer], None]:
    """A fault that is one fixed answer."""

    def apply(provider: JwksServer, other: JwksServer) -> None:
        provider.serve(status, body, **{"Content-Type": content_type, **headers})

    return apply


def _hang(provider: JwksServer, other: JwksServer) -> None:
    provider.answer = Answer(hang=True)


def _write_forever(handler: BaseHTTPRequestHandler) -> None:
    handler.protocol_version = "HTTP/1.0"
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()  # no Content-Length: the body ends when the server says so
    handler.wfile.write(b'{"keys": [], "padding": "')
    for _ in range(2048):  # up to 32 MiB, far past the cap
        handler.wfile.write(b"x" * 16384)


def _stream_forever(provider: JwksServer, other: JwksServer) -> None:
    provider.answer = Answer(write=_write_forever)


def _redirect_to_other_host(provider: JwksServer, other: JwksServer) -> None:
    provider.redirect(other.jwks_uri.replace("127.0.0.1", "localhost"))


def _unsupported_keys(provider: JwksServer, other: JwksServer) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    weak_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(weak)) | {"kid": "weak"}
    provider.serve_json(
        {
            "keys": [
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"},
                weak_jwk,
                {"kty": "PQC", "kid": "future", "x": "AAAA"},
            ]
        }
    )


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
def provider(signing_keys) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.serve_keys(signing_keys[0].jwk)
        yield server


@pytest.fixture
def other(signing_keys) -> Iterator[JwksServer]:
    """A healthy server on another host name, the target of the redirect fault."""
    with JwksServer() as server:
        server.serve_keys(signing_keys[0].jwk)
        yield server


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
    assert provider.jwks_hits() == (0 if fault.name == "connection-refused" else 1)
    assert other.jwks_hits() == 0
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
    assert other.jwks_hits() == 0
