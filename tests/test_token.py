"""Token: what a view holds, and that nothing can change it."""

from __future__ import annotations

from typing import Any

import pytest

from flask_authflow.errors import MalformedToken
from flask_authflow.token import Token

CLAIMS: dict[str, Any] = {
    "sub": "user-1",
    "iss": "https://tenant.example.test/",
    "exp": 1_900_000_000,
    "scope": "read:a write:b",
    "permissions": ["read:c"],
    "roles": ["ops"],
    "groups": ["users"],
    "meta": {"tier": "free", "tags": ["x"]},
}


def token(**claims: Any) -> Token:
    return Token.from_claims("the.raw.token", "Auth0", {**CLAIMS, **claims})


def test_fields_are_read_from_the_claims():
    made = token()
    assert (made.raw, made.scheme, made.subject, made.issuer) == (
        "the.raw.token", "Auth0", "user-1", "https://tenant.example.test/"
    )
    assert made.expires_at == 1_900_000_000.0
    assert made.scopes == frozenset({"read:a", "write:b", "read:c"})
    assert made.roles == frozenset({"ops"})


@pytest.mark.parametrize("name", ["raw", "scheme", "claims", "scopes", "roles", "subject", "other"])
def test_attributes_can_be_neither_set_nor_deleted(name):
    made = token()
    with pytest.raises(AttributeError):
        setattr(made, name, "changed")
    with pytest.raises(AttributeError):
        delattr(made, name)
    assert made == token()


def test_claims_are_deeply_read_only():
    claims = token().claims
    with pytest.raises(TypeError):
        claims["sub"] = "admin"  # type: ignore[index]
    with pytest.raises(TypeError):
        claims["meta"]["tier"] = "gold"
    assert claims["groups"] == ("users",)
    assert claims["meta"]["tags"] == ("x",)


def test_from_claims_copies_the_callers_dict():
    claims = dict(CLAIMS)
    made = Token.from_claims("raw", "Auth0", claims)
    claims["sub"] = "someone-else"
    assert made.claims["sub"] == made.subject == "user-1"


def test_from_claims_copies_nested_objects_and_arrays_too():
    claims = {"sub": "user-1", "meta": {"tier": "free"}, "groups": ["users"]}
    made = Token.from_claims("raw", "Auth0", claims)
    claims["meta"]["tier"] = "gold"
    claims["groups"].append("admins")
    assert made.claims["meta"] == {"tier": "free"}
    assert made.claims["groups"] == ("users",)


def test_own_takes_the_dict_over_without_copying_flat_claims():
    claims = {"sub": "user-1", "exp": 1, "scope": "a"}
    made = Token._own("raw", "Auth0", claims, ())
    assert dict(made.claims) == claims
    assert made.scopes == frozenset({"a"})


def test_the_repr_names_neither_the_token_nor_its_claims():
    text = repr(token())
    assert "the.raw.token" not in text and "user-1" not in text
    assert text.startswith("Token(scheme='Auth0'")


def test_equal_tokens_compare_equal_and_are_unhashable():
    assert token() == token()
    assert token() != token(sub="user-2")
    assert token() != "the.raw.token"
    with pytest.raises(TypeError):
        hash(token())


def test_a_role_claim_of_the_wrong_shape_is_malformed():
    with pytest.raises(MalformedToken):
        Token.from_claims("raw", "Auth0", {"sub": "s", "https://x/roles": 5}, ("https://x/roles",))


def test_tokens_without_scopes_or_roles_have_empty_sets():
    made = Token.from_claims("raw", "Auth0", {"sub": "s"})
    assert made.scopes == frozenset() and made.roles == frozenset()
