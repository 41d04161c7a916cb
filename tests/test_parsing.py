"""The Authorization header and well-formedness rules, before any key work."""

from __future__ import annotations

import base64
import itertools
import json

import pytest

from flask_authflow.authenticator import Authenticator
from flask_authflow.errors import InvalidIssuer, MalformedToken
from flask_authflow.parsing import MAX_TOKEN_LENGTH, HeaderMemo, bearer_token, parse_token
from flask_authflow.routing import Schemes


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: object, payload: object, signature: bytes = b"sig") -> str:
    encode = lambda part: b64(part if isinstance(part, bytes) else json.dumps(part).encode())  # noqa: E731
    return f"{encode(header)}.{encode(payload)}.{b64(signature)}"


GOOD_HEADER = {"alg": "RS256", "kid": "k"}


@pytest.mark.parametrize(
    "value", ["Bearer abc", "bearer abc", "BEARER abc", "Bearer    abc", "  Bearer abc  ", "bEaReR abc"]
)
def test_bearer_in_any_case_with_spaces_trimmed(value):
    assert bearer_token(value) == "abc"


@pytest.mark.parametrize(
    "value", ["", "Bearer", "Bearer ", "Bearerabc", "Basic abc", "Bearer abc def", "Bearer\tabc", "Bearer a,Bearer b"]
)
def test_anything_else_is_malformed(value):
    with pytest.raises(MalformedToken):
        bearer_token(value)


def test_routing_reads_every_spelling_as_bearer_token_does():
    # Authenticator.route() reads "Bearer <token>" without the regex; whatever the
    # spelling, it must find what bearer_token() and parse_token() find.
    authenticator = Authenticator(Schemes(development_issuer="dev"))
    spellings = itertools.product(
        ["", " ", "\t"],
        ["Bearer", "bearer", "Bearer\t", "Bearer,"],
        [" ", "  ", "\t", " \t"],
        [compact(GOOD_HEADER, {"iss": "i"}), "a.b.c", "", "a b"],
        ["", " ", "\t", "\n", " \t", "\t "],
    )
    for before, scheme, gap, token, after in spellings:
        authorization = before + scheme + gap + token + after
        try:
            parse_token(bearer_token(authorization))
            expected = "well-formed"
        except MalformedToken:
            expected = "malformed"
        # No schemes: a well-formed token gets as far as routing, which finds no issuer.
        error = authenticator.route(authorization).error
        found = {MalformedToken: "malformed", InvalidIssuer: "well-formed"}[type(error)]
        assert found == expected, repr(authorization)


def test_well_formed_token_parses():
    token = parse_token(compact(GOOD_HEADER, {"iss": "x", "aud": ["a", "b"], "exp": 1.5}))
    assert token.algorithm == "RS256"
    assert token.kid == "k"
    assert token.issuer == "x"
    assert token.signature == b"sig"


@pytest.mark.parametrize(
    "header",
    [
        {"kid": "k"},                                   # no alg
        {"alg": 1},
        {"alg": "RS256", "kid": 7},
        {"alg": "RS256", "crit": ["exp"], "exp": 1},
        {"alg": "RS256", "crit": []},
        {"alg": "RS256", "b64": False, "crit": ["b64"]},
        ["alg", "RS256"],
    ],
)
def test_bad_headers_are_malformed(header):
    with pytest.raises(MalformedToken):
        parse_token(compact(header, {"iss": "x"}))


@pytest.mark.parametrize("header", [{"kid": "k"}, {"alg": "RS256", "crit": []}, ["alg", "RS256"]])
def test_bad_headers_are_never_remembered(header):
    memo = HeaderMemo()
    for _ in range(2):
        with pytest.raises(MalformedToken):
            parse_token(compact(header, {"iss": "x"}), memo)
    assert len(memo) == 0


def test_a_remembered_header_reads_as_it_did_the_first_time():
    memo = HeaderMemo()
    tokens = [compact({"alg": "ES256", "kid": "k2"}, {"iss": f"issuer-{n}"}) for n in range(3)]
    parsed = [parse_token(token, memo) for token in tokens]
    assert len(memo) == 1
    assert parsed == [parse_token(token) for token in tokens]
    assert {(token.algorithm, token.kid) for token in parsed} == {("ES256", "k2")}
    assert [token.issuer for token in parsed] == ["issuer-0", "issuer-1", "issuer-2"]


def test_a_remembered_header_still_needs_a_well_formed_rest():
    memo = HeaderMemo()
    good = compact(GOOD_HEADER, {"iss": "x"})
    parse_token(good, memo)
    header = good.split(".")[0]
    for token in (f"{header}.e30", f"{header}.!!!.c2ln", f"{header}.{b64(b'[1]')}.c2ln"):
        with pytest.raises(MalformedToken):
            parse_token(token, memo)


def test_the_header_memo_starts_over_when_full():
    memo = HeaderMemo(max_size=2)
    tokens = [compact({"alg": "RS256", "kid": f"k{number}"}, {"iss": "x"}) for number in range(5)]
    for token in tokens:
        parse_token(token, memo)
        assert len(memo) <= 2
    assert len(memo) == 1  # k0 and k1, then k2 and k3 filled it; k4 started it over
    parse_token(tokens[-1], memo)
    assert len(memo) == 1  # known: nothing added


@pytest.mark.parametrize(
    "payload",
    [
        {"exp": "1700000000"},
        {"exp": True},
        {"nbf": [1]},
        {"iat": {"a": 1}},
        {"exp": 10**400},
        {"iss": ["x"]},
        {"sub": 12},
        {"aud": {"a": 1}},
        {"aud": ["a", 1]},
        {"scope": 5},
        {"permissions": "read"},
        {"roles": [None]},
        "a string",
        [1, 2],
    ],
)
def test_claims_of_the_wrong_type_are_malformed(payload):
    with pytest.raises(MalformedToken):
        parse_token(compact(GOOD_HEADER, payload))


@pytest.mark.parametrize("raw_payload", [b'{"exp": NaN}', b'{"exp": Infinity}', b'{"exp": 1e400}', b'{"a":1,"a":2}'])
def test_non_strict_json_is_malformed(raw_payload):
    with pytest.raises(MalformedToken):
        parse_token(compact(GOOD_HEADER, raw_payload))


def test_invalid_utf8_is_malformed():
    with pytest.raises(MalformedToken):
        parse_token(compact(GOOD_HEADER, b'{"sub": "\xff"}'))


def test_deeply_nested_json_is_malformed_not_an_error():
    with pytest.raises(MalformedToken):
        parse_token(compact(GOOD_HEADER, b"[" * 5000 + b"]" * 5000))


@pytest.mark.parametrize("token", ["a.b", "a.b.c.d.e", "a.b.c=", "a+b.c.d", "abcde.e30.e30", "é.e30.e30"])
def test_structure_is_checked(token):
    with pytest.raises(MalformedToken):
        parse_token(token)


def test_oversized_token_is_rejected_before_decoding():
    with pytest.raises(MalformedToken):
        parse_token("e30." + "A" * MAX_TOKEN_LENGTH + ".e30")
