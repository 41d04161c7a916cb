"""The example API answers as its README says, with both schemes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from support import AUDIENCE, bearer

from example import create_app
from flask_authflow.user_jwts import issue_token
from flask_authflow.user_secrets import UserSecretsStore


def example_app(issuer, tmp_path, **config):
    settings = {
        "AUTHFLOW_AUTH0_ISSUER": issuer,
        "AUTHFLOW_AUTH0_AUDIENCE": AUDIENCE,
        "AUTHFLOW_REQUIRE_HTTPS_METADATA": False,
        "AUTHFLOW_USER_SECRETS_DIR": str(tmp_path / "secrets"),
        "AUTHFLOW_ENV": "production",
    }
    settings.update(config)
    return create_app(settings)


def test_public_view_needs_no_token(issuer, tmp_path):
    client = example_app(issuer, tmp_path).test_client()
    assert client.get("/api/messages/public").status_code == 200


def test_auth0_token_reaches_each_view(issuer, tmp_path, mint):
    client = example_app(issuer, tmp_path).test_client()
    assert client.get("/api/messages/private").status_code == 401
    response = client.get("/api/messages/private", headers=bearer(mint()))
    assert response.get_json()["scheme"] == "Auth0"
    assert client.get("/api/messages/private-scoped", headers=bearer(mint())).status_code == 403
    scoped = client.get("/api/messages/private-scoped", headers=bearer(mint(scope="read:messages")))
    assert scoped.status_code == 200
    assert client.get("/api/admin/", headers=bearer(mint(roles=["ops"]))).status_code == 200


def test_development_token_in_development(issuer, tmp_path):
    now = datetime.now(timezone.utc)
    app = example_app(issuer, tmp_path, AUTHFLOW_ENV="development")
    key = UserSecretsStore(tmp_path / "secrets", app.name).get_or_create_key("UserJwts", "dotnet-user-jwts")
    token, _ = issue_token(
        key,
        name="alice",
        audiences=["http://localhost:5000"],
        issuer="dotnet-user-jwts",
        scopes=["read:messages"],
        not_before=now,
        expires_at=now + timedelta(hours=1),
    )
    client = app.test_client()
    response = client.get("/api/messages/private-scoped", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    assert client.get("/api/messages/private", headers=bearer(token)).get_json()["scheme"] == "UserJwts"
