"""The routing step: which scheme judges a token, and public views left alone."""

from __future__ import annotations

import pytest
from support import bearer

from flask_authflow.errors import InvalidIssuer
from flask_authflow.parsing import parse_token
from flask_authflow.routing import Schemes, route_by_issuer
from flask_authflow.validation import Scheme


def scheme(name: str) -> Scheme:
    return Scheme(name=name, issuer=name, audiences=frozenset(), algorithms=frozenset(), keys=None)  # type: ignore[arg-type]


def unverified(**claims: object) -> object:
    import jwt

    return parse_token(jwt.encode(claims, "k" * 32, algorithm="HS256"))


AUTH0, DEV = scheme("Auth0"), scheme("UserJwts")


def test_development_issuer_goes_to_the_development_scheme():
    schemes = Schemes("dotnet-user-jwts", auth0=AUTH0, user_jwts=DEV)
    assert route_by_issuer(unverified(iss="dotnet-user-jwts"), schemes) is DEV


def test_development_issuer_without_the_development_scheme_is_refused():
    schemes = Schemes("dotnet-user-jwts", auth0=AUTH0)
    with pytest.raises(InvalidIssuer):
        route_by_issuer(unverified(iss="dotnet-user-jwts"), schemes)


@pytest.mark.parametrize("claims", [{"iss": "https://tenant.auth0.com/"}, {"iss": "https://unknown/"}, {}])
def test_every_other_issuer_goes_to_auth0(claims):
    schemes = Schemes("dotnet-user-jwts", auth0=AUTH0, user_jwts=DEV)
    assert route_by_issuer(unverified(**claims), schemes) is AUTH0


def test_without_auth0_every_non_development_token_is_an_invalid_issuer():
    schemes = Schemes("dotnet-user-jwts", user_jwts=DEV)
    with pytest.raises(InvalidIssuer):
        route_by_issuer(unverified(iss="https://tenant.auth0.com/"), schemes)


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("garbage"), {"Authorization": "Basic abc"}, bearer("a.b.c")],
)
def test_public_view_answers_the_same_with_any_token_or_none(client, headers):
    response = client.get("/public", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"public": True}


def test_public_view_with_expired_token_still_answers(client, mint, clock):
    response = client.get("/public", headers=bearer(mint(exp=int(clock.now) - 3600)))
    assert response.status_code == 200


def test_missing_issuer_is_judged_by_auth0(client, mint, jwks_server):
    response = client.get("/private", headers=bearer(mint(iss=None)))
    assert response.status_code == 401
    assert "The issuer is invalid" in response.headers["WWW-Authenticate"]
    assert jwks_server.jwks_hits() == 0


def test_routing_does_not_fetch_keys_for_public_views(client, mint, jwks_server):
    client.get("/public", headers=bearer(mint()))
    assert jwks_server.jwks_hits() == 0
