"""AuthFlow.init_app: per-app state, the cache it uses, error rendering, fail-closed guard."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask_caching import Cache
from support import AUDIENCE, bearer

from flask_authflow import AuthFlow, ConfigurationError, requires_auth
from flask_authflow.errors import AuthError


def test_state_lives_in_app_extensions(app):
    state = app.extensions["authflow"]
    assert state.settings.auth0_audiences == (AUDIENCE,)
    assert not hasattr(state.extension, "app")


def test_second_init_app_on_the_same_app_raises(app):
    with pytest.raises(RuntimeError, match="already initialised"):
        app.extensions["authflow"].extension.init_app(app)


def test_using_the_extension_without_init_app_names_the_cause(issuer):
    app = Flask(__name__)

    @app.get("/private")
    @requires_auth
    def private():
        return "x"

    with app.test_request_context("/private"):
        with pytest.raises(RuntimeError, match="init_app"):
            app.view_functions["private"]()


def test_configuration_error_at_start_up(issuer):
    app = Flask(__name__)
    app.config.update(AUTHFLOW_AUTH0_ISSUER=issuer)  # no audience
    with pytest.raises(ConfigurationError, match="AUTHFLOW_AUTH0_AUDIENCE"):
        AuthFlow(app)
    assert "authflow" not in app.extensions


def test_https_is_required_by_default(issuer):
    app = Flask(__name__)
    app.config.update(AUTHFLOW_AUTH0_ISSUER=issuer, AUTHFLOW_AUTH0_AUDIENCE=AUDIENCE)
    with pytest.raises(ConfigurationError, match="AUTHFLOW_REQUIRE_HTTPS_METADATA"):
        AuthFlow(app)


def test_bad_cache_type_is_a_configuration_error(make_app):
    with pytest.raises(ConfigurationError, match="AUTHFLOW_CACHE_TYPE"):
        make_app(CACHE_TYPE="no.such.CacheBackend")


def test_keys_are_kept_in_the_default_simple_cache(app, client, mint):
    client.get("/private", headers=bearer(mint()))
    state = app.extensions["authflow"]
    backend = app.extensions["cache"][state.cache]
    entry = backend.get(f"authflow:jwks:{state.settings.auth0_jwks_uri}")
    assert isinstance(entry["jwks"]["keys"], list)


def test_an_initialised_cache_is_used_as_it_is(make_app, clock, mint, jwks_server):
    shared = Cache(config={"CACHE_TYPE": "SimpleCache"})
    first_app = Flask("first")
    shared.init_app(first_app)
    auth = AuthFlow(cache=shared, clock=clock)
    app = make_app(extension=auth)
    assert app.extensions["authflow"].cache is shared
    app.test_client().get("/private", headers=bearer(mint()))
    # A second app sharing the Cache object (initialised for it by init_app) finds the keys.
    other = make_app(extension=AuthFlow(cache=shared, clock=clock))
    assert other.test_client().get("/private", headers=bearer(mint())).status_code == 200
    assert jwks_server.jwks_hits() == 2  # separate backends per app: one fetch each


def test_error_response_hook_replaces_the_rendering(make_app, clock):
    auth = AuthFlow(clock=clock)

    @auth.error_response
    def problem(error: AuthError):
        return {"title": error.reason, "status": error.status_code}, error.status_code, error.headers()

    response = make_app(extension=auth).test_client().get("/private", headers=bearer("x.y.z"))
    assert response.status_code == 401
    assert response.get_json() == {"title": "The token is malformed", "status": 401}
    assert "The token is malformed" in response.headers["WWW-Authenticate"]


def test_unexpected_failure_is_logged_without_the_token_and_answered_401(app, client, mint, caplog):
    state = app.extensions["authflow"]

    class ExplodingKeys:
        def key_set(self, kid):
            raise ZeroDivisionError(f"boom with {token}")

    token = mint()
    object.__setattr__(state.authenticator.schemes.auth0, "keys", ExplodingKeys())
    with caplog.at_level(logging.ERROR, logger="flask_authflow"):
        response = client.get("/private", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.get_json() == {"error": "invalid_token"}
    assert "ZeroDivisionError" in caplog.text
    assert token not in caplog.text
    assert token.split(".")[1] not in caplog.text


def test_a_g_class_without_a_dict_is_refused_at_start_up(issuer):
    class SlotsOnly:
        __slots__ = ("anything",)

    app = Flask(__name__)
    app.config.update(AUTHFLOW_AUTH0_ISSUER=issuer, AUTHFLOW_AUTH0_AUDIENCE=AUDIENCE)
    app.app_ctx_globals_class = SlotsOnly  # type: ignore[assignment]
    with pytest.raises(ConfigurationError, match="app.app_ctx_globals_class"):
        AuthFlow(app)
    assert "authflow" not in app.extensions


def test_a_g_subclass_works(make_app, mint):
    from flask.ctx import _AppCtxGlobals

    app = make_app()
    app.app_ctx_globals_class = type("Globals", (_AppCtxGlobals,), {})
    response = app.test_client().get("/private", headers=bearer(mint()))
    assert response.status_code == 200
