"""No token, token segment or key material in logs, signals or error responses.

Every failure case of the attack corpus, the error contract's other rows, a JWKS outage,
an unexpected exception whose message quotes the token, and a corrupt development key
store are run with every logger at DEBUG. Then the captured log records (message and
traceback), the ``authentication_failed`` signal's arguments and the whole response
(body and headers) are searched for:

- the bearer token, and every segment of it and of the ``Authorization`` value that is
  long enough to be recognisable (16 characters);
- the private numbers of every RSA key the tests use (d, p, q, dp, dq, qi) in decimal,
  hex and base64url, and the body of their PEM encoding;
- the development HMAC key in base64, base64url and hex.

A needle is found when any 32-character window of it (taken every 16 characters) is, so
a truncated or partial leak of 48 characters or more is found too. Error bodies must hold
only the documented members.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import test_attacks
from cryptography.hazmat.primitives import serialization
from flask import Flask
from jwks_server import JwksServer
from support import SigningKey, bearer
from test_attacks import (
    ATTACKS,
    DESCRIPTIONS,
    DEV_SECRETS_ID,
    Attack,
    Forge,
    Request,
    app_for,
    b64url,
)

from flask_authflow import AuthFlow
from flask_authflow.signals import authentication_failed

MIN_SEGMENT = 16
WINDOW = 32

# The corpus's fixtures, used here as they are.
attacker_host = test_attacks.attacker_host
attacker_server = test_attacks.attacker_server
forge = test_attacks.forge


# -- what counts as a secret -------------------------------------------------------------


def _int_forms(value: int) -> list[str]:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return [str(value), format(value, "x"), b64url(raw)]


def key_material(signing_keys: Iterable[SigningKey], dev_key: bytes) -> list[str]:
    needles = [
        base64.b64encode(dev_key).decode(),
        b64url(dev_key),
        dev_key.hex(),
    ]
    for key in signing_keys:
        numbers = key.private.private_numbers()
        for value in (
            numbers.d,
            numbers.p,
            numbers.q,
            numbers.dmp1,
            numbers.dmq1,
            numbers.iqmp,
        ):
            needles.extend(_int_forms(value))
        pem = key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        needles.extend(line for line in pem.splitlines() if not line.startswith("-----"))
    return needles


def token_material(request: Request) -> list[str]:
    """The ``Authorization`` values of ``request`` and their recognisable pieces."""
    headers = request.get("headers", {})
    pairs = headers.items() if isinstance(headers, dict) else headers
    values = [value for name, value in pairs if name == "Authorization"]
    values += [request.get("environ_overrides", {}).get("HTTP_AUTHORIZATION", "")]
    needles = []
    for value in values:
        pieces = [value, *value.split(), *(p for word in value.split() for p in word.split("."))]
        needles.extend(piece for piece in pieces if len(piece) >= MIN_SEGMENT)
    return needles


@dataclass
class Observed:
    """Everything a failure left behind, outside the server's memory."""

    caplog: pytest.LogCaptureFixture
    signals: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    def texts(self) -> Iterator[str]:
        yield self.caplog.text
        for record in self.caplog.records:
            yield record.getMessage()
            yield repr(record.args)
        yield repr(self.signals)
        for response in self.responses:
            yield response.get_data(as_text=True)
            yield str(response.headers)

    def leaks(self, needles: Iterable[str]) -> list[str]:
        """The needles (shortened, for the report) found anywhere in what was observed."""
        haystack = "\0".join(self.texts())
        return sorted({needle[:WINDOW] for needle in needles if _found(needle, haystack)})


def _found(needle: str, haystack: str) -> bool:
    if len(needle) <= WINDOW:
        return needle in haystack
    starts = {*range(0, len(needle) - WINDOW, WINDOW // 2), len(needle) - WINDOW}
    return any(needle[start : start + WINDOW] in haystack for start in starts)


@pytest.fixture
def observed(caplog: pytest.LogCaptureFixture) -> Iterator[Observed]:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="flask_authflow")
    observation = Observed(caplog)

    def record(sender: Flask, **kwargs: Any) -> None:
        observation.signals.append(kwargs)

    with authentication_failed.connected_to(record):
        yield observation


def assert_documented_body(response: Any) -> None:
    body = response.get_json()
    if response.status_code == 401:
        assert body == {"error": "invalid_token", "error_description": body["error_description"]}
        assert body["error_description"] in DESCRIPTIONS
    elif response.status_code == 403:
        assert body in ({"error": "insufficient_scope"}, {"error": "forbidden"})
    else:
        assert response.status_code == 503
        assert body == {"error": "temporarily_unavailable"}


def run(
    attack: Attack, forge: Forge, make_app: Callable[..., Flask], observed: Observed
) -> Request:
    """Send the attack to its view and to the public view; check the first body."""
    client = app_for(attack, make_app).test_client()
    request = attack.request(forge)
    for path in (attack.path, "/public"):
        observed.responses.append(client.get(path, **request))
    assert_documented_body(observed.responses[0])
    return request


# -- every attack of the corpus, and the other rows of the error contract ----------------

# As in the corpus, ``description`` is the ``error_description`` expected (for a 403,
# the ``error``).
CONTRACT_FAILURES = (
    Attack("expired", "The token is expired", lambda f: f.token(exp=f.now - 3600)),
    Attack("not-yet-valid", "The token is not valid yet", lambda f: f.token(nbf=f.now + 3600)),
    Attack("no-expiration", "The token has no expiration", lambda f: f.token(exp=None)),
    Attack(
        "insufficient-scope",
        "insufficient_scope",
        lambda f: f.token(scope="read:messages"),
        path="/scoped",
    ),
    Attack("missing-role", "forbidden", lambda f: f.token(roles=["viewer"]), path="/roles"),
    Attack(
        "development-token-signed-with-another-key",
        "The signature is invalid",
        lambda f: f.jws(f.header("HS256", kid=f.dev_kid), f.dev_claims(), key=b"k" * 32),
        env="development",
    ),
    Attack(
        "development-token-expired",
        "The token is expired",
        lambda f: f.jws(
            f.header("HS256", kid=f.dev_kid), f.dev_claims(exp=f.now - 3600), key=f.dev_key
        ),
        env="development",
    ),
)


FAILURES = ATTACKS + CONTRACT_FAILURES


@pytest.mark.parametrize("attack", FAILURES, ids=[attack.name for attack in FAILURES])
def test_a_failure_leaves_no_secret_behind(
    attack: Attack,
    forge: Forge,
    make_app: Callable[..., Flask],
    observed: Observed,
    signing_keys: list[SigningKey],
) -> None:
    request = run(attack, forge, make_app, observed)
    body = observed.responses[0].get_json()
    assert body.get("error_description", body["error"]) == attack.description
    needles = token_material(request) + key_material(signing_keys, forge.dev_key)
    assert observed.leaks(needles) == []


def test_no_authorization_header_is_answered_with_the_bare_error(
    forge: Forge, client: Any, observed: Observed
) -> None:
    response = client.get("/private")
    assert response.get_json() == {"error": "invalid_token"}
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_jwks_outage_leaves_no_secret_behind(
    forge: Forge,
    make_app: Callable[..., Flask],
    observed: Observed,
    jwks_server: JwksServer,
    signing_keys: list[SigningKey],
) -> None:
    jwks_server.serve(status=500, body=json.dumps({"keys": [signing_keys[0].jwk]}).encode())
    request = run(Attack("outage", "", lambda f: f.jws()), forge, make_app, observed)
    assert observed.responses[0].status_code == 503
    # The capture works: the outage was logged, without anything secret.
    assert any(
        r.name == "flask_authflow" and r.levelno == logging.WARNING
        for r in observed.caplog.records
    )
    needles = token_material(request) + key_material(signing_keys, forge.dev_key)
    assert observed.leaks(needles) == []


class TokenQuotingClock:
    """A clock that fails, once armed, with an exception whose message quotes the token:
    the worst case for the one guard that logs unexpected exceptions."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.token: str | None = None

    def __call__(self) -> float:
        if self.token is not None:
            raise RuntimeError(f"clock failed while validating {self.token}")
        return self.now


def test_an_unexpected_exception_quoting_the_token_is_logged_without_it(
    forge: Forge,
    make_app: Callable[..., Flask],
    observed: Observed,
    signing_keys: list[SigningKey],
) -> None:
    clock = TokenQuotingClock(forge.now)
    client = make_app(extension=AuthFlow(clock=clock)).test_client()
    token = forge.jws()
    clock.token = token
    response = client.get("/private", headers=bearer(token))
    observed.responses.append(response)

    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid_token"}
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    errors = [r for r in observed.caplog.records if r.levelno >= logging.ERROR]
    assert errors and "RuntimeError" in errors[0].getMessage()
    needles = token_material({"headers": bearer(token)}) + key_material(
        signing_keys, forge.dev_key
    )
    assert observed.leaks(needles) == []


# -- a corrupt development store -----------------------------------------------------------


def _corrupt_entry(defect: str, key: bytes) -> dict[str, Any]:
    value = base64.b64encode(key).decode()
    return {
        "length-does-not-match": {"Value": value, "Length": len(key) - 1},
        "value-not-base64": {"Value": value + "!*", "Length": len(key)},
        "key-too-short": {"Value": base64.b64encode(key[:16]).decode(), "Length": 16},
    }[defect]


@pytest.mark.parametrize("defect", ["length-does-not-match", "value-not-base64", "key-too-short"])
def test_a_corrupt_development_key_is_reported_without_its_value(
    defect: str,
    forge: Forge,
    make_app: Callable[..., Flask],
    observed: Observed,
    tmp_path: Any,
    signing_keys: list[SigningKey],
) -> None:
    entry = {
        "Id": forge.dev_kid,
        "Issuer": "dotnet-user-jwts",
        **_corrupt_entry(defect, forge.dev_key),
    }
    path = tmp_path / "usersecrets" / DEV_SECRETS_ID / "secrets.json"
    path.write_text(json.dumps({"Authentication:Schemes:Bearer:SigningKeys": [entry]}))
    attack = Attack(
        "corrupt-store",
        "The signature key was not found",
        lambda f: f.jws(f.header("HS256", kid=f.dev_kid), f.dev_claims(), key=f.dev_key),
        env="development",
    )
    request = run(attack, forge, make_app, observed)

    assert observed.responses[0].get_json()["error_description"] == attack.description
    # The capture works: the store's problem was logged, naming the file.
    warnings = [r.getMessage() for r in observed.caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in message for message in warnings), warnings
    needles = token_material(request) + key_material(signing_keys, forge.dev_key)
    assert observed.leaks([*needles, entry["Value"]]) == []


def test_the_search_finds_partial_leaks(
    forge: Forge, observed: Observed, signing_keys: list[SigningKey]
) -> None:
    """The search itself works: a piece of a token segment or a key number is caught."""
    token = forge.jws()
    needles = token_material({"headers": bearer(token)}) + key_material(
        signing_keys, forge.dev_key
    )
    assert observed.leaks(needles) == []
    logging.getLogger("flask_authflow").debug("leak %s", token.split(".")[1][7:60])
    assert len(observed.leaks(needles)) >= 1
    observed.caplog.clear()
    prime = signing_keys[1].private.private_numbers().p
    logging.getLogger("elsewhere").warning("leak %s", format(prime, "x")[40:100])
    assert observed.leaks(needles) == [format(prime, "x")[:WINDOW]]
