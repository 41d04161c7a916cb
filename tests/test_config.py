"""Configuration: defaults, normalisation, and start-up errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_authflow.config import ConfigurationError, load_settings

BASE = {"AUTHFLOW_AUTH0_DOMAIN": "tenant.auth0.com", "AUTHFLOW_AUTH0_AUDIENCE": "https://api"}


def load(config=None, *, debug=False, **overrides):
    merged = dict(BASE if config is None else config)
    merged.update({f"AUTHFLOW_{key}": value for key, value in overrides.items()})
    return load_settings(merged, app_name="myapp", debug=debug)


def test_defaults(monkeypatch):
    monkeypatch.delenv("AUTHFLOW_USER_SECRETS_DIR", raising=False)
    settings = load()
    assert settings.env == "production"
    assert settings.auth0_issuer == "https://tenant.auth0.com/"
    assert settings.auth0_jwks_uri == "https://tenant.auth0.com/.well-known/jwks.json"
    assert settings.auth0_audiences == ("https://api",)
    assert settings.auth0_algorithms == ("RS256",)
    assert settings.clock_skew == 60
    assert settings.jwks_cache_ttl == 600
    assert settings.jwks_refresh_cooldown == 30
    assert settings.user_jwts_issuer == "dotnet-user-jwts"
    assert settings.user_jwts_audiences == ("http://localhost:5000", "http://127.0.0.1:5000")
    assert settings.user_secrets_id == "myapp"
    assert settings.user_secrets_dir.parts[-2:] == ("flask-authflow", "usersecrets")
    assert settings.role_claims == ()
    assert settings.cache_config == {"CACHE_TYPE": "SimpleCache"}


def test_debug_means_development():
    assert load(debug=True).env == "development"


def test_explicit_env_wins_over_debug():
    assert load(debug=True, ENV="production").env == "production"


@pytest.mark.parametrize(
    "domain",
    ["tenant.auth0.com", "tenant.auth0.com/", "https://tenant.auth0.com", "https://tenant.auth0.com/", " tenant.auth0.com "],
)
def test_domain_is_normalised(domain):
    settings = load(AUTH0_DOMAIN=domain)
    assert settings.auth0_issuer == "https://tenant.auth0.com/"
    assert settings.auth0_jwks_uri == "https://tenant.auth0.com/.well-known/jwks.json"


def test_issuer_is_used_exactly_and_jwks_uri_joined_with_one_slash():
    settings = load({"AUTHFLOW_AUTH0_ISSUER": "https://login.example.com/", "AUTHFLOW_AUTH0_AUDIENCE": "a"})
    assert settings.auth0_issuer == "https://login.example.com/"
    assert settings.auth0_jwks_uri == "https://login.example.com/.well-known/jwks.json"


def test_issuer_without_trailing_slash_still_gets_one_slash_before_the_jwks_path():
    settings = load({"AUTHFLOW_AUTH0_ISSUER": "https://login.example.com", "AUTHFLOW_AUTH0_AUDIENCE": "a"})
    assert settings.auth0_issuer == "https://login.example.com"
    assert settings.auth0_jwks_uri == "https://login.example.com/.well-known/jwks.json"


def test_explicit_jwks_uri():
    assert load(AUTH0_JWKS_URI="https://keys.example.com/jwks").auth0_jwks_uri == "https://keys.example.com/jwks"


def test_audience_list():
    assert load(AUTH0_AUDIENCE=["a", "b"]).auth0_audiences == ("a", "b")


def test_cache_settings_are_handed_to_flask_caching():
    settings = load(CACHE_TYPE="RedisCache", CACHE_REDIS_URL="redis://127.0.0.1:6379/0")
    assert settings.cache_config == {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://127.0.0.1:6379/0"}


def test_user_secrets_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTHFLOW_USER_SECRETS_DIR", str(tmp_path))
    assert load().user_secrets_dir == Path(tmp_path)


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"AUTH0_AUDIENCE": None}, "AUTHFLOW_AUTH0_AUDIENCE"),
        ({"AUTH0_AUDIENCE": ""}, "AUTHFLOW_AUTH0_AUDIENCE"),
        ({"AUTH0_AUDIENCE": [1]}, "AUTHFLOW_AUTH0_AUDIENCE"),
        ({"AUTH0_DOMAIN": "http://tenant.auth0.com"}, "AUTHFLOW_AUTH0_ISSUER"),
        ({"AUTH0_JWKS_URI": "http://tenant.auth0.com/jwks"}, "AUTHFLOW_AUTH0_JWKS_URI"),
        ({"AUTH0_JWKS_URI": "not a url"}, "AUTHFLOW_AUTH0_JWKS_URI"),
        ({"AUTH0_DOMAIN": "tenant.auth0.com/path"}, "AUTHFLOW_AUTH0_DOMAIN"),
        ({"AUTH0_ALGORITHMS": ["HS256"]}, "AUTHFLOW_AUTH0_ALGORITHMS"),
        ({"AUTH0_ALGORITHMS": ["none"]}, "AUTHFLOW_AUTH0_ALGORITHMS"),
        ({"AUTH0_ALGORITHMS": []}, "AUTHFLOW_AUTH0_ALGORITHMS"),
        ({"ENV": "staging"}, "AUTHFLOW_ENV"),
        ({"REQUIRE_HTTPS_METADATA": "no"}, "AUTHFLOW_REQUIRE_HTTPS_METADATA"),
        ({"CLOCK_SKEW": -1}, "AUTHFLOW_CLOCK_SKEW"),
        ({"JWKS_CACHE_TTL": 0}, "AUTHFLOW_JWKS_CACHE_TTL"),
        ({"JWKS_CACHE_TTL": "600"}, "AUTHFLOW_JWKS_CACHE_TTL"),
        ({"JWKS_REFRESH_COOLDOWN": -5}, "AUTHFLOW_JWKS_REFRESH_COOLDOWN"),
        ({"JWKS_MAX_STALE": 60}, "AUTHFLOW_JWKS_MAX_STALE"),
        ({"TOKEN_CACHE_SIZE": -1}, "AUTHFLOW_TOKEN_CACHE_SIZE"),
        ({"USER_JWTS_ISSUER": ""}, "AUTHFLOW_USER_JWTS_ISSUER"),
        ({"USER_JWTS_ISSUER": "https://tenant.auth0.com/"}, "AUTHFLOW_USER_JWTS_ISSUER"),
        ({"USER_JWTS_AUDIENCES": []}, "AUTHFLOW_USER_JWTS_AUDIENCES"),
        ({"USER_SECRETS_ID": "../other"}, "AUTHFLOW_USER_SECRETS_ID"),
        ({"ROLE_CLAIMS": [3]}, "AUTHFLOW_ROLE_CLAIMS"),
    ],
)
def test_wrong_values_name_their_key(overrides, key):
    with pytest.raises(ConfigurationError, match=key):
        load(**overrides)


def test_http_metadata_is_allowed_when_https_is_not_required():
    settings = load(AUTH0_DOMAIN="http://127.0.0.1:8080", REQUIRE_HTTPS_METADATA=False)
    assert settings.auth0_jwks_uri == "http://127.0.0.1:8080/.well-known/jwks.json"


def test_production_without_any_scheme_raises():
    with pytest.raises(ConfigurationError, match="AUTHFLOW_AUTH0_DOMAIN"):
        load({})


def test_development_without_auth0_is_allowed():
    settings = load({}, debug=True)
    assert settings.auth0_issuer is None
    assert settings.is_development
