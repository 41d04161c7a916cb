"""One test per row of the error contract (DESIGN.md), through a real app and JWKS server."""

from __future__ import annotations

import pytest
from support import AUDIENCE, bearer


def assert_invalid_token(response, description=None):
    assert response.status_code == 401
    expected = 'Bearer error="invalid_token"'
    if description:
        expected += f', error_description="{description}"'
    assert response.headers["WWW-Authenticate"] == expected
    body = {"error": "invalid_token"}
    if description:
        body["error_description"] = description
    assert response.get_json() == body


def test_valid_token_is_accepted(client, mint):
    response = client.get("/private", headers=bearer(mint()))
    assert response.status_code == 200
    assert response.get_json() == {"sub": "auth0|user-1", "scheme": "Auth0"}


def test_no_authorization_header(client, jwks_server):
    assert_invalid_token(client.get("/private"))
    assert jwks_server.jwks_hits() == 0


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a.b.c d.e.f", "Token x.y.z"])
def test_authorization_that_is_not_one_bearer_token_is_malformed(client, value):
    assert_invalid_token(client.get("/private", headers={"Authorization": value}), "The token is malformed")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b", "a.b.c.d.e", "e30.e30.", "!!!.###.$$$"])
def test_not_a_jwt_is_malformed(client, token):
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The token is malformed")


def test_expired(client, mint, clock):
    token = mint(exp=int(clock.now) - 61)
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The token is expired")


def test_expired_within_clock_skew_is_accepted(client, mint, clock):
    token = mint(exp=int(clock.now) - 30)
    assert client.get("/private", headers=bearer(token)).status_code == 200


def test_not_yet_valid(client, mint, clock):
    token = mint(nbf=int(clock.now) + 120)
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The token is not valid yet")


def test_no_expiration(client, mint):
    assert_invalid_token(client.get("/private", headers=bearer(mint(exp=None))), "The token has no expiration")


def test_unknown_kid(client, mint, signing_keys):
    token = mint(key=signing_keys[2])
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The signature key was not found")


def test_algorithm_not_accepted_by_the_scheme(client, mint):
    token = mint(algorithm="RS384")
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The signature key was not found")


def test_signature_does_not_verify_with_the_named_key(client, mint, signing_keys):
    token = mint(key=signing_keys[2], kid=signing_keys[0].kid)
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The signature is invalid")


def test_tampered_payload_is_an_invalid_signature(client, mint):
    header, payload, signature = mint().split(".")
    other_payload = mint(sub="someone-else").split(".")[1]
    token = ".".join([header, other_payload, signature])
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The signature is invalid")


def test_wrong_audience(client, mint):
    token = mint(aud="https://another-api.example.test")
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The audience is invalid")


def test_missing_audience(client, mint):
    assert_invalid_token(client.get("/private", headers=bearer(mint(aud=None))), "The audience is invalid")


def test_audience_array_with_the_api_identifier_is_accepted(client, mint):
    token = mint(aud=[AUDIENCE, "https://tenant.auth0.com/userinfo"])
    assert client.get("/private", headers=bearer(token)).status_code == 200


def test_wrong_issuer(client, mint, jwks_server):
    token = mint(iss="https://evil.example.test/")
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The issuer is invalid")
    assert jwks_server.jwks_hits() == 0


def test_development_token_outside_development(client, mint):
    token = mint(iss="dotnet-user-jwts")
    assert_invalid_token(client.get("/private", headers=bearer(token)), "The issuer is invalid")


def test_insufficient_scope(client, mint):
    response = client.get("/scoped", headers=bearer(mint(scope="read:messages")))
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers
    assert response.get_json() == {"error": "insufficient_scope"}


def test_missing_role(client, mint):
    response = client.get("/roles", headers=bearer(mint(roles=["viewer"])))
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers
    assert response.get_json() == {"error": "forbidden"}


def test_keys_cannot_be_fetched_and_none_are_cached(client, mint, jwks_server):
    jwks_server.serve(status=500, body=b"oops")
    response = client.get("/private", headers=bearer(mint()))
    assert response.status_code == 503
    assert "WWW-Authenticate" not in response.headers
    assert response.get_json() == {"error": "temporarily_unavailable"}
    assert response.headers["Retry-After"] == "30"
