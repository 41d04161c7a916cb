"""flask_authflow.testing and its pytest fixture: accepted tokens without network or store."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from support import bearer

from flask_authflow.extension import get_state
from flask_authflow.testing import PROBLEMS, TestTokens


def test_the_plugin_is_registered_for_pytest():
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins.get("flask_authflow") == "flask_authflow.pytest_plugin"


def test_fixture_tokens_are_accepted_without_fetching_keys(client, authflow_tokens, jwks_server):
    token = authflow_tokens.auth0("auth0|alice", scopes=["read:messages", "write:messages"], roles=["ops"])
    headers = authflow_tokens.headers(token)
    assert client.get("/private", headers=headers).get_json() == {"sub": "auth0|alice", "scheme": "Auth0"}
    assert client.get("/scoped", headers=headers).status_code == 200
    assert client.get("/roles", headers=headers).status_code == 200
    assert jwks_server.jwks_hits() == 0


def test_scopes_and_roles_are_still_enforced(client, authflow_tokens):
    headers = authflow_tokens.headers(authflow_tokens.auth0(scopes=["read:messages"], roles=["viewer"]))
    assert client.get("/scoped", headers=headers).status_code == 403
    assert client.get("/roles", headers=headers).status_code == 403


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_invalid_tokens_are_refused_with_their_description(client, authflow_tokens, problem):
    response = client.get("/private", headers=bearer(authflow_tokens.invalid(problem)))
    assert response.status_code == 401
    assert response.get_json()["error_description"] == PROBLEMS[problem]


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_invalid_development_tokens_are_refused_with_their_description(make_app, tmp_path, problem):
    # Both schemes registered: a foreign issuer goes to the Auth0 scheme, which must
    # still answer with the issuer, not with its algorithm check.
    app = make_app(ENV="development", USER_SECRETS_DIR=str(tmp_path / "never-created"))
    tokens = TestTokens(app)
    response = app.test_client().get("/private", headers=bearer(tokens.invalid(problem, scheme="UserJwts")))
    assert response.status_code == 401
    assert response.get_json()["error_description"] == PROBLEMS[problem]


def test_real_tokens_are_refused_while_test_keys_are_installed(app, mint):
    client = app.test_client()
    cache = get_state(app).authenticator.token_cache
    assert cache is not None
    real = mint()
    for _ in range(2):  # the second use caches it
        assert client.get("/private", headers=bearer(real)).status_code == 200
    assert real in cache
    tokens = TestTokens(app)
    test_token = tokens.auth0()
    assert client.get("/private", headers=bearer(real)).status_code == 401
    for _ in range(2):
        assert client.get("/private", headers=bearer(test_token)).status_code == 200
    assert test_token in cache
    tokens.restore()
    assert client.get("/private", headers=bearer(real)).status_code == 200
    assert client.get("/private", headers=bearer(test_token)).status_code == 401


def test_development_tokens_without_touching_the_store(make_app, tmp_path):
    app = make_app(ENV="development", USER_SECRETS_DIR=str(tmp_path / "never-created"))
    tokens = TestTokens(app)
    token = tokens.user_jwts("alice", scopes=["read:messages", "write:messages"], roles=["admin"])
    client = app.test_client()
    assert client.get("/private", headers=bearer(token)).get_json() == {"sub": "alice", "scheme": "UserJwts"}
    assert client.get("/scoped", headers=bearer(token)).status_code == 200
    assert client.get("/roles", headers=bearer(token)).status_code == 200
    expired = client.get("/private", headers=bearer(tokens.invalid("expired", scheme="UserJwts")))
    assert expired.get_json()["error_description"] == "The token is expired"
    assert not (tmp_path / "never-created").exists()


def test_development_tokens_need_the_development_scheme(app):
    with pytest.raises(RuntimeError, match="development"):
        TestTokens(app).user_jwts()


def test_custom_claims_and_lifetime(make_app, clock):
    app = make_app()
    tokens = TestTokens(app)

    @app.get("/tenant")
    def tenant():
        from flask_authflow import authenticate_request

        return {"tenant": authenticate_request().claims["tenant"]}

    token = tokens.auth0(claims={"tenant": "acme"}, expires_in=120)
    client = app.test_client()
    assert client.get("/tenant", headers=bearer(token)).get_json() == {"tenant": "acme"}
    clock.advance(120 + 61)
    assert client.get("/tenant", headers=bearer(token)).status_code == 401
