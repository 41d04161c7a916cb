"""Helpers for your own test suite: tokens your app accepts, with no network and no store.

:class:`TestTokens` swaps the signing keys of an initialised app's schemes for keys it
generates in memory, then signs tokens with them. The Auth0 scheme then never fetches
its JWK Set and the UserJwts scheme never opens the user-secrets store, while every
other rule (issuer, audience, lifetime, algorithms, scopes, roles) stays the app's own.
With pytest, the ``authflow_tokens`` fixture (see :mod:`flask_authflow.pytest_plugin`)
does this for the ``app`` fixture of your suite.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from flask import Flask

from .extension import get_state
from .keys import KeySet, VerificationKey, key_type_for
from .routing import Schemes
from .user_jwts import dotnet_value
from .validation import Scheme

TEST_KID = "flask-authflow-test-key"

#: Ways :meth:`TestTokens.invalid` can spoil a token, and the description each earns.
PROBLEMS: Mapping[str, str] = {
    "expired": "The token is expired",
    "not_yet_valid": "The token is not valid yet",
    "no_expiration": "The token has no expiration",
    "wrong_audience": "The audience is invalid",
    "wrong_issuer": "The issuer is invalid",
    "bad_signature": "The signature is invalid",
    "unknown_key": "The signature key was not found",
    "malformed": "The token is malformed",
}


class StaticKeys:
    """A ``KeySource`` that always answers with the same keys."""

    def __init__(self, key_set: KeySet) -> None:
        self._key_set = key_set

    def key_set(self, kid: str | None) -> KeySet:
        return self._key_set

    def fresh_key_set(self, now: float) -> KeySet:
        return self._key_set


class TestTokens:
    """Sign tokens that ``app`` accepts; see the module docstring.

    :param app: an app on which ``AuthFlow.init_app`` ran.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, app: Flask) -> None:
        self._state = get_state(app)
        self._original = self._state.authenticator.schemes
        self._clock = self._state.extension._clock
        self._signing: dict[str, tuple[str, Any]] = {}
        self._state.authenticator.replace_schemes(
            Schemes(
                development_issuer=self._original.development_issuer,
                auth0=self._with_test_key(self._original.auth0),
                user_jwts=self._with_test_key(self._original.user_jwts),
            )
        )

    def restore(self) -> None:
        """Give the app its real keys back."""
        self._state.authenticator.replace_schemes(self._original)

    def auth0(
        self,
        subject: str = "auth0|test-user",
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        expires_in: float = 3600,
    ) -> str:
        """A token the Auth0 scheme accepts (``scope`` as Auth0 writes it: one string)."""
        extra: dict[str, Any] = {"scope": " ".join(scopes)} if scopes else {}
        roles = list(roles)
        if roles:
            extra["roles"] = roles
        return self._sign("Auth0", subject, expires_in, {**extra, **(claims or {})})

    def user_jwts(
        self,
        name: str = "test-user",
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        expires_in: float = 3600,
    ) -> str:
        """A development token (only accepted when the app runs in development)."""
        extra: dict[str, Any] = {"unique_name": name}
        for claim, values in (("scope", list(scopes)), ("role", list(roles))):
            if values:
                extra[claim] = dotnet_value(values)
        return self._sign("UserJwts", name, expires_in, {**extra, **(claims or {})})

    def invalid(self, problem: str, scheme: str = "Auth0") -> str:
        """A token the app refuses for ``problem``, one of :data:`PROBLEMS`."""
        if problem not in PROBLEMS:
            raise ValueError(f"unknown problem {problem!r}; choose one of {sorted(PROBLEMS)}")
        policy = self._scheme(scheme)
        now = self._clock()
        skew = policy.clock_skew
        spoilers: dict[str, dict[str, Any]] = {
            "expired": {"exp": now - skew - 3600},
            "not_yet_valid": {"nbf": now + skew + 3600},
            "no_expiration": {"exp": None},
            "wrong_audience": {"aud": "https://not-this-api.invalid"},
            "wrong_issuer": {"iss": "https://not-this-issuer.invalid/"},
        }
        changes = spoilers.get(problem, {})
        if problem == "malformed":
            return "not.a-valid.token"
        if problem == "wrong_issuer" and self._original.auth0 is not None:
            # A foreign issuer is routed to the Auth0 scheme, whose algorithm check
            # comes before its issuer check: sign as that scheme does.
            scheme = "Auth0"
        token = self._sign(scheme, "invalid-user", 3600, changes, kid=(
            "not-a-known-key" if problem == "unknown_key" else TEST_KID
        ))
        if problem == "bad_signature":
            header, payload, signature = token.split(".")
            flipped = "A" if signature[0] != "A" else "B"
            token = ".".join([header, payload, flipped + signature[1:]])
        return token

    @staticmethod
    def headers(token: str) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for a test client call."""
        return {"Authorization": f"Bearer {token}"}

    def _scheme(self, name: str) -> Scheme:
        scheme = self._original.auth0 if name == "Auth0" else self._original.user_jwts
        if scheme is None:
            raise RuntimeError(
                f"The app has no {name} scheme: "
                + ("set AUTHFLOW_AUTH0_DOMAIN." if name == "Auth0" else "run it in development.")
            )
        return scheme

    def _sign(
        self, scheme_name: str, subject: str, expires_in: float, claims: Mapping[str, Any],
        *, kid: str = TEST_KID,
    ) -> str:
        scheme = self._scheme(scheme_name)
        algorithm, private_key = self._signing[scheme_name]
        now = int(self._clock())
        audiences = sorted(scheme.audiences)
        payload: dict[str, Any] = {
            "iss": scheme.issuer,
            "sub": subject,
            "aud": audiences[0] if len(audiences) == 1 else audiences,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, private_key, algorithm=algorithm, headers={"kid": kid})

    def _with_test_key(self, scheme: Scheme | None) -> Scheme | None:
        if scheme is None:
            return None
        algorithm = sorted(scheme.algorithms)[0]
        private_key, public_key = _test_key(algorithm)
        self._signing[scheme.name] = (algorithm, private_key)
        key = VerificationKey(kid=TEST_KID, key_type=key_type_for(algorithm), key=public_key)
        return dataclasses.replace(scheme, keys=StaticKeys(KeySet((key,), version=-1.0)))


@functools.lru_cache(maxsize=16)
def _test_key(algorithm: str) -> tuple[Any, Any]:
    """A key pair (or an HMAC secret twice) for ``algorithm``, made once per process."""
    kind = key_type_for(algorithm)
    if kind == "oct":
        secret = secrets.token_bytes(64)
        return secret, secret
    private: Any
    if kind == "RSA":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif kind == "EC":
        curves: dict[str, ec.EllipticCurve] = {
            "ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()
        }
        private = ec.generate_private_key(curves[algorithm])
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return private, private.public_key()
