"""The routing step: choose a scheme by the token's unverified ``iss``.

Routing never trusts the claim; it only decides whose rules judge the token. The
development issuer goes to the development scheme when it is registered and is
refused otherwise; every other issuer (Auth0's, an unknown one, none) goes to the
Auth0 scheme, whose issuer check then refuses what is not its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidIssuer
from .parsing import UnverifiedToken
from .validation import Scheme

AUTH0 = "Auth0"
USER_JWTS = "UserJwts"


@dataclass(frozen=True)
class Schemes:
    """The schemes registered for one app."""

    development_issuer: str
    auth0: Scheme | None = None
    user_jwts: Scheme | None = None


def route_by_issuer(token: UnverifiedToken, schemes: Schemes) -> Scheme:
    """The scheme that must validate ``token``; :class:`InvalidIssuer` when there is none."""
    if token.issuer == schemes.development_issuer:
        scheme = schemes.user_jwts
    else:
        scheme = schemes.auth0
    if scheme is None:
        raise InvalidIssuer()
    return scheme
