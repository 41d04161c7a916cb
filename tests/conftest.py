"""Shared fixtures: a controllable clock, RSA keys, a real JWKS server, a token minter,
and an app factory with a public, a protected, a scoped and a role-guarded view."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Flask
from jwks_server import JwksServer
from redis_server import RedisServer, start_redis
from support import AUDIENCE, Clock, SigningKey

from flask_authflow import AuthFlow, current_token, requires_auth, requires_role, requires_scope

@pytest.fixture(scope="session")
def signing_keys() -> list[SigningKey]:
    return [
        SigningKey(f"key-{n}", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        for n in range(3)
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jwks_server(signing_keys: list[SigningKey]) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.serve_keys(signing_keys[0].jwk, signing_keys[1].jwk)
        yield server


@pytest.fixture
def issuer(jwks_server: JwksServer) -> str:
    return jwks_server.url + "/"


Mint = Callable[..., str]


@pytest.fixture
def mint(signing_keys: list[SigningKey], clock: Clock, issuer: str) -> Mint:
    """Sign an Auth0-like token; keyword arguments override claims (None drops one)."""

    def mint_token(
        *,
        key: SigningKey | None = None,
        kid: str | None | bool = True,
        algorithm: str = "RS256",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = key or signing_keys[0]
        payload: dict[str, Any] = {
            "iss": issuer,
            "sub": "auth0|user-1",
            "aud": AUDIENCE,
            "iat": int(clock.now),
            "exp": int(clock.now) + 3600,
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        header = dict(headers or {})
        if kid is True:
            header["kid"] = key.kid
        elif isinstance(kid, str):
            header["kid"] = kid
        return jwt.encode(payload, key.private, algorithm=algorithm, headers=header or None)

    return mint_token


@pytest.fixture
def redis_server(tmp_path: Any) -> Iterator[RedisServer]:
    """A real redis-server of its own on a loopback port (skipped, or with
    AUTHFLOW_REQUIRE_REDIS failed, when there is no redis-server)."""
    server = start_redis(tmp_path)
    yield server
    server.stop()


def add_views(app: Flask) -> None:
    api = Blueprint("api", __name__)

    @api.get("/public")
    def public() -> dict[str, Any]:
        return {"public": True}

    @api.get("/private")
    @requires_auth
    def private() -> dict[str, Any]:
        return {"sub": current_token.subject, "scheme": current_token.scheme}

    @api.get("/scoped")
    @requires_scope("read:messages", "write:messages")
    def scoped() -> dict[str, Any]:
        return {"scopes": sorted(current_token.scopes)}

    @api.get("/roles")
    @requires_role("admin", "ops")
    def roles() -> dict[str, Any]:
        return {"roles": sorted(current_token.roles)}

    app.register_blueprint(api)


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(issuer: str, clock: Clock, tmp_path: Any) -> AppFactory:
    """An app with the test views; keyword arguments are AUTHFLOW_ config overrides."""

    def factory(extension: AuthFlow | None = None, **config: Any) -> Flask:
        app = Flask(__name__)
        app.config.update(
            AUTHFLOW_AUTH0_ISSUER=issuer,
            AUTHFLOW_AUTH0_AUDIENCE=AUDIENCE,
            AUTHFLOW_REQUIRE_HTTPS_METADATA=False,
            AUTHFLOW_ENV="production",
            AUTHFLOW_USER_SECRETS_DIR=str(tmp_path / "usersecrets"),
        )
        app.config.update({f"AUTHFLOW_{name}": value for name, value in config.items()})
        add_views(app)
        (extension or AuthFlow(clock=clock)).init_app(app)
        return app

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()
