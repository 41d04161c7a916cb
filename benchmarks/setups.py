"""The apps the benchmark compares, the keys and tokens they share, and a local JWKS server.

Every app answers ``GET /`` with a small JSON body naming the token's subject, so the
setups differ only in how the bearer token is checked. Each competitor checks what
Flask-AuthFlow checks: signature, issuer, audience, ``exp`` with 60 s of leeway.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, abort, request

from flask_authflow import AuthFlow, current_token, requires_auth
from flask_authflow.user_jwts import issue_token
from flask_authflow.user_secrets import UserSecretsStore, UserSigningKey

AUDIENCE = "https://api.bench.test"
KID = "bench-key-1"
DEV_ISSUER = "dotnet-user-jwts"
DEV_AUDIENCE = "http://localhost:5000"
LEEWAY = 60
#: Claims Authlib's JWT bearer validator insists on (RFC 7523); every token carries
#: them so that all setups verify the very same token.
AUTHLIB_CLAIMS = {"client_id": "bench-client", "grant_type": "client_credentials"}


# -- keys and tokens ------------------------------------------------------------------


@dataclass(frozen=True)
class RsaKeys:
    """The identity provider's signing key, as every setup needs it."""

    private: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> RsaKeys:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def jwk_set(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update(kid=KID, use="sig", alg="RS256")
        return {"keys": [jwk]}


def auth0_claims(issuer: str, serial: int, now: float | None = None) -> dict[str, Any]:
    """The payload of an Auth0-like access token; ``serial`` makes it distinct."""
    issued = int(time.time() if now is None else now)
    return {
        "iss": issuer,
        "sub": f"auth0|bench-user-{serial}",
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + 3600,
        "scope": "read:messages",
        "azp": "bench-client",
        "gty": "client-credentials",
        **AUTHLIB_CLAIMS,
    }


def mint_rs256(private: Any, issuer: str, serial: int) -> str:
    return jwt.encode(auth0_claims(issuer, serial), private, algorithm="RS256", headers={"kid": KID})


def mint_rs256_range(private_pem: bytes, issuer: str, start: int, count: int) -> list[str]:
    """``count`` distinct tokens; a module-level function so a process pool can run it."""
    private = serialization.load_pem_private_key(private_pem, password=None)
    return [mint_rs256(private, issuer, serial) for serial in range(start, start + count)]


def mint_many(keys: RsaKeys, issuer: str, count: int, chunk: int = 1000) -> list[str]:
    """``count`` distinct RS256 tokens, signed on every core."""
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [
            pool.submit(mint_rs256_range, keys.private_pem, issuer, start, min(chunk, count - start))
            for start in range(0, count, chunk)
        ]
        return [token for future in futures for token in future.result()]


@dataclass(frozen=True)
class DevelopmentStore:
    """A throw-away user-secrets store (outside the source tree) with one HS256 key."""

    root: Path
    secrets_id: str = "bench"

    def store(self) -> UserSecretsStore:
        return UserSecretsStore(self.root, self.secrets_id)

    def mint(self, serial: int, key: UserSigningKey | None = None) -> str:
        """A fresh development token, as ``flask user-jwts create`` would issue it."""
        key = key or self.key()
        now = datetime.now(timezone.utc)
        token, _ = issue_token(
            key,
            name=f"dev-user-{serial}",
            audiences=[DEV_AUDIENCE],
            issuer=DEV_ISSUER,
            scopes=["read:messages"],
            claims=AUTHLIB_CLAIMS,
            not_before=now - timedelta(seconds=5),
            expires_at=now + timedelta(hours=1),
            issued_at=now,
        )
        return token

    def key(self) -> UserSigningKey:
        return self.store().get_or_create_key("UserJwts", DEV_ISSUER)


@contextmanager
def development_store() -> Iterator[DevelopmentStore]:
    with tempfile.TemporaryDirectory(prefix="authflow-bench-") as folder:
        yield DevelopmentStore(Path(folder) / "usersecrets")


# -- the identity provider's JWKS endpoint -----------------------------------------------


class JwksEndpoint:
    """A real HTTP server on 127.0.0.1 answering every GET with one JWK Set."""

    def __init__(self, jwk_set: dict[str, Any], port: int = 0) -> None:
        body = json.dumps(jwk_set).encode()
        endpoint = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                endpoint.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        #: The issuer the tokens name; the JWK Set is at the usual place below it.
        self.issuer = f"http://127.0.0.1:{port}/"
        self.jwks_uri = f"{self.issuer}.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> JwksEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the apps ---------------------------------------------------------------------------


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        abort(401)
    return token


def unprotected_app() -> Flask:
    app = Flask("unprotected")

    @app.get("/")
    def view() -> dict[str, Any]:
        return {"sub": "anonymous"}

    return app


def signature_floor_app(verify: Callable[[bytes, bytes], None]) -> Flask:
    """Not a verifier: the view checks only the token's signature (``verify(signing
    input, signature)``, straight into ``cryptography`` or ``hmac``) and nothing else, not
    even its claims. No correct verifier of a new token can cost less, so this setup
    shows what the machine's signature check alone costs next to a Flask request."""
    app = Flask("signature_floor")

    @app.get("/")
    def view() -> dict[str, Any]:
        signing_input, _, signature = _bearer().rpartition(".")
        try:
            verify(signing_input.encode(), base64.urlsafe_b64decode(signature + "=="))
        except InvalidSignature:
            abort(401)
        return {"sub": "anonymous"}

    return app


def rs256_verifier(public_key: rsa.RSAPublicKey) -> Callable[[bytes, bytes], None]:
    padding_scheme, digest = padding.PKCS1v15(), hashes.SHA256()
    return lambda message, signature: public_key.verify(signature, message, padding_scheme, digest)


def hs256_verifier(secret: bytes) -> Callable[[bytes, bytes], None]:
    def verify(message: bytes, signature: bytes) -> None:
        if not hmac.compare_digest(hmac.digest(secret, message, "sha256"), signature):
            raise InvalidSignature()

    return verify


def pyjwt_app(key: Any, algorithm: str, issuer: str, audience: str) -> Flask:
    """``jwt.decode`` called in the view with a pre-loaded key."""
    app = Flask("pyjwt")

    @app.get("/")
    def view() -> dict[str, Any]:
        try:
            claims = jwt.decode(
                _bearer(), key, algorithms=[algorithm], audience=audience, issuer=issuer,
                leeway=LEEWAY, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError:
            abort(401)
        return {"sub": claims["sub"]}

    return app


def flask_jwt_extended_app(key: Any, algorithm: str, issuer: str, audience: str) -> Flask:
    """flask-jwt-extended configured to verify the identity provider's tokens."""
    from flask_jwt_extended import JWTManager, get_jwt_identity, jwt_required

    app = Flask("flask_jwt_extended")
    app.config.update(
        JWT_ALGORITHM=algorithm,
        JWT_DECODE_ALGORITHMS=[algorithm],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_DECODE_ISSUER=issuer,
        JWT_DECODE_AUDIENCE=audience,
        JWT_DECODE_LEEWAY=LEEWAY,
    )
    if algorithm.startswith("HS"):
        app.config["JWT_SECRET_KEY"] = key
    else:
        app.config["JWT_PUBLIC_KEY"] = key
    JWTManager(app)

    @app.get("/")
    @jwt_required()
    def view() -> dict[str, Any]:
        return {"sub": get_jwt_identity()}

    return app


def authlib_app(key: Any, issuer: str, audience: str) -> Flask:
    """Authlib's ResourceProtector with its JWT bearer token validator (RFC 7523)."""
    from authlib.integrations.flask_oauth2 import ResourceProtector
    from authlib.integrations.flask_oauth2 import current_token as authlib_token
    from authlib.oauth2.rfc7523 import JWTBearerTokenValidator

    validator = JWTBearerTokenValidator(key, issuer=issuer, leeway=LEEWAY)
    # The stock validator does not check the audience; an API must.
    validator.claims_options["aud"] = {"essential": True, "value": audience}
    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(validator)
    app = Flask("authlib")

    @app.get("/")
    @require_oauth()
    def view() -> dict[str, Any]:
        return {"sub": authlib_token["sub"]}

    return app


def authflow_app(
    *, issuer: str | None = None, dev_store: DevelopmentStore | None = None, **config: Any
) -> Flask:
    """Flask-AuthFlow for the Auth0 issuer, or in development with ``dev_store``'s keys.

    Also serves ``/public`` for the HTTP-level comparison; keyword arguments are
    ``AUTHFLOW_*`` settings without the prefix.
    """
    # root_path: the development store must lie outside it, wherever this is run from.
    app = Flask("authflow", root_path=str(Path(__file__).resolve().parent))
    if issuer is not None:
        app.config.update(
            AUTHFLOW_AUTH0_ISSUER=issuer,
            AUTHFLOW_AUTH0_AUDIENCE=AUDIENCE,
            AUTHFLOW_REQUIRE_HTTPS_METADATA=False,
        )
    if dev_store is not None:
        app.config.update(
            AUTHFLOW_ENV="development",
            AUTHFLOW_USER_SECRETS_DIR=str(dev_store.root),
            AUTHFLOW_USER_SECRETS_ID=dev_store.secrets_id,
        )
    else:
        app.config["AUTHFLOW_ENV"] = "production"
    app.config.update({f"AUTHFLOW_{name}": value for name, value in config.items()})

    @app.get("/")
    @requires_auth
    def view() -> dict[str, Any]:
        return {"sub": current_token.subject}

    @app.get("/public")
    def public() -> dict[str, Any]:
        return {"sub": "anonymous"}

    AuthFlow(app)
    return app

