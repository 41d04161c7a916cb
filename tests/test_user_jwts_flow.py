"""End to end: ``flask user-jwts create`` makes a token that the development app accepts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support import Clock

from flask_authflow import user_secrets
from flask_authflow.user_secrets import UserSecretsStore


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The suite's app (its views, its clock) in development."""
    return make_app(ENV="development")


def cli_token(app: Flask, *args: str) -> str:
    """A token from ``flask user-jwts create``, run on the app's own CLI group."""
    result = app.test_cli_runner().invoke(args=["user-jwts", "create", "-o", "token", *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def get(client: FlaskClient, path: str, token: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_a_cli_token_opens_a_protected_view_with_the_userjwts_scheme(app: Flask) -> None:
    token = cli_token(app, "--name", "alice")
    response = get(app.test_client(), "/private", token)
    assert response.status_code == 200
    assert response.json == {"sub": "alice", "scheme": "UserJwts"}


def test_scopes_from_the_cli_are_honoured(app: Flask) -> None:
    client = app.test_client()
    both = cli_token(app, "--scope", "read:messages", "--scope", "write:messages")
    one = cli_token(app, "--scope", "read:messages")

    allowed = get(client, "/scoped", both)
    assert allowed.status_code == 200
    assert allowed.json == {"scopes": ["read:messages", "write:messages"]}
    refused = get(client, "/scoped", one)
    assert (refused.status_code, refused.json) == (403, {"error": "insufficient_scope"})


def test_roles_from_the_cli_are_honoured(app: Flask) -> None:
    client = app.test_client()
    allowed = get(client, "/roles", cli_token(app, "--role", "ops", "--role", "viewer"))
    assert (allowed.status_code, allowed.json) == (200, {"roles": ["ops", "viewer"]})
    refused = get(client, "/roles", cli_token(app, "--role", "viewer"))
    assert (refused.status_code, refused.json) == (403, {"error": "forbidden"})


def test_the_cli_lifetime_and_audience_are_enforced(app: Flask) -> None:
    client = app.test_client()
    expired = cli_token(app, "--not-before", "2020-01-01", "--expires-on", "2020-01-02")
    elsewhere = cli_token(app, "--audience", "https://elsewhere.example")
    assert get(client, "/private", expired).json["error_description"] == "The token is expired"
    assert get(client, "/private", elsewhere).json["error_description"] == "The audience is invalid"


def test_key_reset_turns_old_tokens_into_signature_key_not_found(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    old = cli_token(app)
    assert get(client, "/private", old).status_code == 200

    reset = app.test_cli_runner().invoke(args=["user-jwts", "key", "--reset", "--force"])
    assert reset.exit_code == 0, reset.stderr
    clock.advance(1.0)  # the watcher re-checks the file at most once a second

    response = get(client, "/private", old)
    assert response.status_code == 401
    assert response.json == {
        "error": "invalid_token",
        "error_description": "The signature key was not found",
    }
    assert 'error_description="The signature key was not found"' in response.headers[
        "WWW-Authenticate"
    ]
    assert get(client, "/private", cli_token(app)).status_code == 200, "no restart needed"


def test_production_refuses_a_dev_token_without_opening_the_store(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = cli_token(make_app(ENV="development"))
    touched: list[str] = []

    def spy(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def recording(*args: Any, **kwargs: Any) -> Any:
            touched.append(name)
            return original(*args, **kwargs)

        return recording

    for name in ("__init__", "file_state", "signing_keys", "find_key", "token_records"):
        monkeypatch.setattr(UserSecretsStore, name, spy(name, getattr(UserSecretsStore, name)))
    monkeypatch.setattr(
        user_secrets, "read_json_object", spy("read", user_secrets.read_json_object)
    )
    production = make_app(ENV="production")

    response = get(production.test_client(), "/private", token)

    assert response.status_code == 401
    assert response.json == {"error": "invalid_token", "error_description": "The issuer is invalid"}
    assert touched == []
