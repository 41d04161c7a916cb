"""Configuration keys, their defaults, and their validation at start-up.

Every key is read once, in :meth:`AuthFlow.init_app`, into an immutable
:class:`Settings`. A wrong value raises :class:`ConfigurationError` naming the
key, so a misconfigured app fails when it starts, never in the middle of a request.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from .user_secrets import check_secrets_id

DEVELOPMENT = "development"
PRODUCTION = "production"

#: Algorithms the Auth0 scheme may be configured to accept: asymmetric only, so a
#: public key can never be used as an HMAC secret.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

DEFAULTS: Mapping[str, Any] = {
    "AUTHFLOW_AUTH0_DOMAIN": None,
    "AUTHFLOW_AUTH0_ISSUER": None,
    "AUTHFLOW_AUTH0_AUDIENCE": None,
    "AUTHFLOW_AUTH0_JWKS_URI": None,
    "AUTHFLOW_AUTH0_ALGORITHMS": ("RS256",),
    "AUTHFLOW_REQUIRE_HTTPS_METADATA": True,
    "AUTHFLOW_ENV": None,
    "AUTHFLOW_CLOCK_SKEW": 60,
    "AUTHFLOW_JWKS_CACHE_TTL": 600,
    "AUTHFLOW_JWKS_REFRESH_COOLDOWN": 30,
    "AUTHFLOW_JWKS_MAX_STALE": 86400,
    "AUTHFLOW_JWKS_FETCH_TIMEOUT": 5,
    "AUTHFLOW_TOKEN_CACHE_SIZE": 4096,
    "AUTHFLOW_USER_JWTS_ISSUER": "dotnet-user-jwts",
    "AUTHFLOW_USER_JWTS_AUDIENCES": ("http://localhost:5000", "http://127.0.0.1:5000"),
    "AUTHFLOW_USER_SECRETS_ID": None,
    "AUTHFLOW_USER_SECRETS_DIR": None,
    "AUTHFLOW_ROLE_CLAIMS": (),
}

CACHE_PREFIX = "AUTHFLOW_CACHE_"


class ConfigurationError(ValueError):
    """A configuration key holds a value Flask-AuthFlow cannot use."""


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one app."""

    env: str
    auth0_issuer: str | None
    auth0_audiences: tuple[str, ...]
    auth0_jwks_uri: str | None
    auth0_algorithms: tuple[str, ...]
    require_https_metadata: bool
    clock_skew: float
    jwks_cache_ttl: float
    jwks_refresh_cooldown: float
    jwks_max_stale: float
    jwks_fetch_timeout: float
    token_cache_size: int
    user_jwts_issuer: str
    user_jwts_audiences: tuple[str, ...]
    user_secrets_id: str
    user_secrets_dir: Path
    role_claims: tuple[str, ...]
    cache_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_development(self) -> bool:
        return self.env == DEVELOPMENT


def default_user_secrets_dir() -> Path:
    """The store's root when neither the config key nor the env var names one."""
    from_env = os.environ.get("AUTHFLOW_USER_SECRETS_DIR")
    if from_env:
        return Path(from_env)
    return Path(click.get_app_dir("flask-authflow")) / "usersecrets"


def load_settings(config: Mapping[str, Any], *, app_name: str, debug: bool) -> Settings:
    """Read and validate every ``AUTHFLOW_*`` key of an app's config."""

    def get(key: str) -> Any:
        return config.get(key, DEFAULTS[key])

    env = get("AUTHFLOW_ENV")
    if env is None:
        env = DEVELOPMENT if debug else PRODUCTION
    if env not in (DEVELOPMENT, PRODUCTION):
        raise ConfigurationError(
            f"AUTHFLOW_ENV must be 'development' or 'production', not {env!r}."
        )

    require_https = _boolean(get("AUTHFLOW_REQUIRE_HTTPS_METADATA"), "AUTHFLOW_REQUIRE_HTTPS_METADATA")
    issuer = _auth0_issuer(get("AUTHFLOW_AUTH0_DOMAIN"), get("AUTHFLOW_AUTH0_ISSUER"))
    audiences: tuple[str, ...] = ()
    jwks_uri = None
    if issuer is not None:
        audiences = _string_list(get("AUTHFLOW_AUTH0_AUDIENCE"), "AUTHFLOW_AUTH0_AUDIENCE")
        if not audiences:
            raise ConfigurationError(
                "AUTHFLOW_AUTH0_AUDIENCE is required when the Auth0 scheme is configured "
                "(AUTHFLOW_AUTH0_DOMAIN or AUTHFLOW_AUTH0_ISSUER): set it to your API identifier."
            )
        jwks_uri = get("AUTHFLOW_AUTH0_JWKS_URI") or issuer.rstrip("/") + "/.well-known/jwks.json"
        _check_url(issuer, "AUTHFLOW_AUTH0_ISSUER", require_https, must_be_url=False)
        _check_url(jwks_uri, "AUTHFLOW_AUTH0_JWKS_URI", require_https, must_be_url=True)
    elif env == PRODUCTION:
        raise ConfigurationError(
            "No authentication scheme is configured: AUTHFLOW_ENV is 'production' and neither "
            "AUTHFLOW_AUTH0_DOMAIN nor AUTHFLOW_AUTH0_ISSUER is set."
        )

    algorithms = _string_list(get("AUTHFLOW_AUTH0_ALGORITHMS"), "AUTHFLOW_AUTH0_ALGORITHMS")
    unsupported = [alg for alg in algorithms if alg not in ASYMMETRIC_ALGORITHMS]
    if not algorithms or unsupported:
        raise ConfigurationError(
            "AUTHFLOW_AUTH0_ALGORITHMS must list asymmetric JWS algorithms from "
            f"{sorted(ASYMMETRIC_ALGORITHMS)}; not accepted: {unsupported or 'an empty list'}."
        )

    cooldown = _seconds(get("AUTHFLOW_JWKS_REFRESH_COOLDOWN"), "AUTHFLOW_JWKS_REFRESH_COOLDOWN")
    user_jwts_issuer = get("AUTHFLOW_USER_JWTS_ISSUER")
    if not isinstance(user_jwts_issuer, str) or not user_jwts_issuer:
        raise ConfigurationError("AUTHFLOW_USER_JWTS_ISSUER must be a non-empty string.")
    if user_jwts_issuer == issuer:
        raise ConfigurationError(
            "AUTHFLOW_USER_JWTS_ISSUER must differ from the Auth0 issuer: routing picks the "
            "scheme by issuer."
        )
    user_jwts_audiences = _string_list(
        get("AUTHFLOW_USER_JWTS_AUDIENCES"), "AUTHFLOW_USER_JWTS_AUDIENCES"
    )
    if not user_jwts_audiences:
        raise ConfigurationError("AUTHFLOW_USER_JWTS_AUDIENCES must name at least one audience.")

    secrets_id = get("AUTHFLOW_USER_SECRETS_ID") or app_name
    try:
        check_secrets_id(secrets_id)
    except ValueError as exc:
        raise ConfigurationError(f"AUTHFLOW_USER_SECRETS_ID: {exc}") from None
    secrets_dir = get("AUTHFLOW_USER_SECRETS_DIR")
    secrets_dir = Path(secrets_dir) if secrets_dir else default_user_secrets_dir()

    token_cache_size = get("AUTHFLOW_TOKEN_CACHE_SIZE")
    if isinstance(token_cache_size, bool) or not isinstance(token_cache_size, int) or token_cache_size < 0:
        raise ConfigurationError(
            "AUTHFLOW_TOKEN_CACHE_SIZE must be a whole number >= 0 (0 turns the cache off)."
        )

    ttl = _seconds(get("AUTHFLOW_JWKS_CACHE_TTL"), "AUTHFLOW_JWKS_CACHE_TTL")
    max_stale = _seconds(get("AUTHFLOW_JWKS_MAX_STALE"), "AUTHFLOW_JWKS_MAX_STALE")
    if max_stale < ttl:
        raise ConfigurationError(
            "AUTHFLOW_JWKS_MAX_STALE must be at least AUTHFLOW_JWKS_CACHE_TTL: keys are "
            "used while fresh, and stale keys only while the provider cannot be reached."
        )

    return Settings(
        env=env,
        auth0_issuer=issuer,
        auth0_audiences=audiences,
        auth0_jwks_uri=jwks_uri,
        auth0_algorithms=algorithms,
        require_https_metadata=require_https,
        clock_skew=_seconds(get("AUTHFLOW_CLOCK_SKEW"), "AUTHFLOW_CLOCK_SKEW", allow_zero=True),
        jwks_cache_ttl=ttl,
        jwks_refresh_cooldown=cooldown,
        jwks_max_stale=max_stale,
        jwks_fetch_timeout=_seconds(get("AUTHFLOW_JWKS_FETCH_TIMEOUT"), "AUTHFLOW_JWKS_FETCH_TIMEOUT"),
        token_cache_size=token_cache_size,
        user_jwts_issuer=user_jwts_issuer,
        user_jwts_audiences=user_jwts_audiences,
        user_secrets_id=secrets_id,
        user_secrets_dir=secrets_dir,
        role_claims=_string_list(get("AUTHFLOW_ROLE_CLAIMS"), "AUTHFLOW_ROLE_CLAIMS"),
        cache_config=_cache_config(config),
    )


def _auth0_issuer(domain: Any, issuer: Any) -> str | None:
    if issuer:
        if not isinstance(issuer, str):
            raise ConfigurationError("AUTHFLOW_AUTH0_ISSUER must be a string.")
        return issuer
    if not domain:
        return None
    if not isinstance(domain, str):
        raise ConfigurationError("AUTHFLOW_AUTH0_DOMAIN must be a string such as 'tenant.auth0.com'.")
    host = domain.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            return host.rstrip("/") + "/"
    host = host.strip("/")
    if not host or "/" in host or " " in host:
        raise ConfigurationError(
            f"AUTHFLOW_AUTH0_DOMAIN must be a host name such as 'tenant.auth0.com', not {domain!r}."
        )
    return f"https://{host}/"


def _check_url(url: Any, key: str, require_https: bool, *, must_be_url: bool) -> None:
    if not isinstance(url, str):
        raise ConfigurationError(f"{key} must be a string.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if must_be_url or parts.scheme in ("http", "https"):
            raise ConfigurationError(f"{key} must be an absolute http(s) URL, not {url!r}.")
        return
    if require_https and parts.scheme != "https":
        raise ConfigurationError(
            f"{key} uses http:// ({url!r}); keys must be fetched over HTTPS. Set "
            "AUTHFLOW_REQUIRE_HTTPS_METADATA = False only for local testing."
        )


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise ConfigurationError(f"{key} must be a string or a list of non-empty strings.")


def _seconds(value: Any, key: str, *, allow_zero: bool = False) -> float:
    valid = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not valid:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{key} must be a number of seconds {bound}, not {value!r}.")
    return float(value)


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be True or False, not {value!r}.")
    return value


def _cache_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``AUTHFLOW_CACHE_<NAME>`` keys into flask-caching's ``CACHE_<NAME>``."""
    cache_config = {
        "CACHE_" + key[len(CACHE_PREFIX):]: value
        for key, value in config.items()
        if key.startswith(CACHE_PREFIX)
    }
    cache_config.setdefault("CACHE_TYPE", "SimpleCache")
    return cache_config
