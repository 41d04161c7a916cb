"""Property-based fuzzing of the whole request path, through the Flask test client.

Five properties, each checked on a few hundred generated requests or tokens:

- any ``Authorization`` value at all is answered 401 with a documented description by a
  protected view, and leaves a public view's answer unchanged;
- any token-shaped string (base64url segments of random bytes, random JSON, a valid
  token's members spoilt one or two at a time, hostile header members) likewise;
- a correctly signed, structurally valid token with random claims passes only when every
  rule holds: the expected answer is computed here from DESIGN.md, not by the library;
- a valid token with any one character changed is refused (tamper evidence, including
  the unused bits of base64url);
- parsing with the header memo finds exactly what parsing without it finds, for
  token-shaped strings whose headers repeat (so the memo is hit).

Runs are reproducible (``derandomize=True``, no example database): every run makes the
same choices; only the JWKS server's port, and so the issuer string, differs. They are
bounded so the file takes a few seconds. Each test reuses one app for all its examples,
hence the suppressed ``function_scoped_fixture`` health check: between examples only
caches change (the JWK Set, verified tokens), and with a clock that stands still neither
can change a verdict.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jwks_server import JwksServer
from support import AUDIENCE, Clock, SigningKey
from flask_authflow.errors import MalformedToken
from flask_authflow.parsing import HeaderMemo, UnverifiedToken, parse_token
from test_attacks import (
    BAD_AUDIENCE,
    BAD_ISSUER,
    BAD_SIGNATURE,
    DESCRIPTIONS,
    DEV_ISSUER,
    EXPIRED,
    JWKS_PATH,
    NO_EXPIRATION,
    NO_KEY,
    NOT_YET_VALID,
    b64url,
)

SKEW = 60
#: The keys the JWKS server publishes (by kid, index into ``signing_keys``); key-2 is not.
SERVED = {"key-0": 0, "key-1": 1}
SCOPES = ("read:messages", "write:messages", "read:admin")
ROLES = ("admin", "ops", "viewer")

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- what must hold of every refused request ----------------------------------------------


def assert_documented_refusal(response: Any) -> str:
    """A 401 whose header and body carry one documented description; returns it."""
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_token"
    description = body["error_description"]
    assert description in DESCRIPTIONS
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}"'
    )
    return description


def assert_public_view_unchanged(client: Any, **request: Any) -> None:
    response = client.get("/public", **request)
    assert (response.status_code, response.get_json()) == (200, {"public": True})


# -- strategies ----------------------------------------------------------------------------

B64URL = string.ascii_letters + string.digits + "-_"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=5,
)


def encoded(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def mostly(
    good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], odds: int = 5
) -> st.SearchStrategy[Any]:
    """``bad`` once in ``odds`` draws, else ``good``: so that a case often breaks just
    one rule and reaches the checks behind it."""
    return st.integers(min_value=1, max_value=odds).flatmap(lambda n: bad if n == 1 else good)


ABSENT = object()


@st.composite
def spoiled_jws(draw: st.DrawFn, issuer: str) -> str:
    """A JWS that would pass but for a few members replaced by random JSON or removed,
    and a random signature (so it can never pass)."""
    header: dict[str, Any] = {
        "alg": "RS256",
        "kid": draw(st.sampled_from([*SERVED, "key-2"])),
        **draw(st.sampled_from([{}, {"jku": issuer + "attacker/jwks.json"}, {"zip": "DEF"}])),
    }
    payload: dict[str, Any] = {
        "iss": draw(st.sampled_from([issuer, DEV_ISSUER])),
        "aud": AUDIENCE,
        "exp": draw(st.integers(min_value=2_000_000_000, max_value=2**40) | st.floats(0, 2**40)),
        "sub": draw(st.text(max_size=12)),
        "scope": draw(st.sampled_from(SCOPES)),
    }
    spoilable = [(header, name) for name in ("alg", "kid", "crit", "b64", "typ")] + [
        (payload, name)
        for name in ("iss", "aud", "exp", "nbf", "iat", "sub", "scope", "permissions", "roles")
    ]
    spoiled = draw(st.lists(st.sampled_from(range(len(spoilable))), max_size=2, unique=True))
    for index in spoiled:
        document, name = spoilable[index]
        value = draw(st.just(ABSENT) | json_values)
        document.pop(name, None)
        if value is not ABSENT:
            document[name] = value
    payload = {**draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)), **payload}
    signature = draw(st.binary(max_size=300))
    return ".".join([encoded(header), encoded(payload), b64url(signature)])


def token_shaped(issuer: str) -> st.SearchStrategy[str]:
    segment = st.one_of(
        json_values.map(encoded),
        st.binary(max_size=80).map(b64url),
        st.text(alphabet=B64URL, max_size=40),
        st.text(alphabet=B64URL + "=+/.é% \t", max_size=40),
    )
    return mostly(spoiled_jws(issuer), st.lists(segment, max_size=6).map(".".join), odds=4)


# Authorization values a WSGI server can deliver: any text; the WSGI environ is set
# directly so that line breaks and control characters get through as a raw socket would.
authorization_values = st.one_of(
    st.text(),
    st.binary().map(lambda raw: raw.decode("latin-1")),
    st.tuples(
        st.sampled_from(["Bearer ", "bearer  ", "Bearer", "Basic ", "", " Bearer\t"]),
        st.text(),
    ).map("".join),
)


# -- properties ----------------------------------------------------------------------------


@FUZZ
@given(value=authorization_values)
def test_any_authorization_value_is_refused_and_public_views_do_not_care(
    client: Any, jwks_server: JwksServer, value: str
) -> None:
    request = {"environ_overrides": {"HTTP_AUTHORIZATION": value}}
    event(assert_documented_refusal(client.get("/private", **request)))
    assert_public_view_unchanged(client, **request)
    assert set(jwks_server.hits) <= {JWKS_PATH}


@FUZZ
@given(data=st.data())
def test_any_token_shaped_string_is_refused_and_public_views_do_not_care(
    client: Any, jwks_server: JwksServer, issuer: str, data: st.DataObject
) -> None:
    token = data.draw(token_shaped(issuer), label="token")
    prefix = data.draw(st.sampled_from(["Bearer ", "bearer ", "BEARER   "]), label="scheme")
    request = {"headers": {"Authorization": prefix + token}}
    event(assert_documented_refusal(client.get("/private", **request)))
    assert_public_view_unchanged(client, **request)
    # Nothing in a token chooses a URL, not even a jku on the trusted host.
    assert set(jwks_server.hits) <= {JWKS_PATH}


@pytest.fixture
def header_memo() -> HeaderMemo:
    """One small memo for all of a test's examples: it fills, starts over, and is hit."""
    return HeaderMemo(max_size=8)


def parsed_or_malformed(raw: str, memo: HeaderMemo | None) -> UnverifiedToken | str:
    try:
        return parse_token(raw, memo)
    except MalformedToken:
        return "malformed"


@FUZZ
@given(data=st.data())
def test_the_header_memo_never_changes_what_parsing_finds(
    header_memo: HeaderMemo, issuer: str, data: st.DataObject
) -> None:
    shaped = data.draw(st.lists(token_shaped(issuer), min_size=2, max_size=4), label="tokens")
    # Each token's header with every token's rest, so that known headers meet new rests.
    headers = [token.partition(".")[0] for token in shaped]
    rests = [token.partition(".")[2] for token in shaped]
    for header in headers:
        for rest in rests:
            raw = f"{header}.{rest}"
            with_memo = parsed_or_malformed(raw, header_memo)
            event("malformed" if with_memo == "malformed" else "parsed")
            assert with_memo == parsed_or_malformed(raw, None), raw


# -- signed tokens with random claims ----------------------------------------------------

MISSING = None  # the ``mint`` fixture drops a claim given as None
offsets = st.one_of(
    st.integers(min_value=-2 * SKEW, max_value=2 * SKEW),
    st.floats(min_value=-2 * SKEW, max_value=2 * SKEW, allow_nan=False),
    st.sampled_from([-SKEW, SKEW, -(10**6), 10**6]),
)


@st.composite
def signed_cases(draw: st.DrawFn, issuer: str) -> dict[str, Any]:
    other = "https://other.example.test"
    words = st.lists(st.sampled_from(SCOPES), max_size=3, unique=True)
    signer, kid = draw(
        mostly(
            st.sampled_from([(0, "key-0"), (1, "key-1"), (0, MISSING), (1, MISSING)]),
            st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from([*SERVED, "key-2", MISSING])),
        )
    )
    issuers = [issuer + "x", issuer.rstrip("/"), issuer.upper(), DEV_ISSUER, MISSING]
    return {
        "signer": signer,
        "kid": kid,
        "algorithm": draw(mostly(st.just("RS256"), st.sampled_from(["RS384", "RS512", "PS256"]))),
        "path": draw(st.sampled_from(["/private", "/scoped", "/roles"])),
        "claims": {
            "iss": draw(mostly(st.just(issuer), st.sampled_from(issuers))),
            "aud": draw(
                mostly(
                    st.sampled_from([AUDIENCE, [other, AUDIENCE]]),
                    st.sampled_from([[], other, [other], AUDIENCE + "/", MISSING]),
                )
            ),
            "exp": draw(mostly(offsets, st.none())),
            "nbf": draw(st.none() | offsets),
            "sub": draw(st.text(max_size=20)),
            "scope": draw(st.none() | words.map(" ".join) | words),
            "permissions": draw(st.none() | words),
            "roles": draw(st.none() | st.sampled_from(ROLES) | st.lists(st.sampled_from(ROLES))),
        },
    }


def expected_answer(case: dict[str, Any], issuer: str, now: float) -> tuple[int, str | None]:
    """The answer DESIGN.md prescribes, first failure wins. Routing: the development
    issuer has no scheme in production. Then the Auth0 scheme: algorithm accepted →
    issuer (exact) → key found → signature → exp present → not expired → nbf → audience;
    then the view's own scope or role rule. ``exp``/``nbf`` are offsets from ``now``."""
    claims = case["claims"]
    if claims["iss"] == DEV_ISSUER:
        return 401, BAD_ISSUER
    if case["algorithm"] != "RS256":
        return 401, NO_KEY
    if claims["iss"] != issuer:
        return 401, BAD_ISSUER
    if case["kid"] is None:
        if case["signer"] not in SERVED.values():
            return 401, NO_KEY
    elif case["kid"] not in SERVED:
        return 401, NO_KEY
    elif SERVED[case["kid"]] != case["signer"]:
        return 401, BAD_SIGNATURE
    if claims["exp"] is None:
        return 401, NO_EXPIRATION
    if now + claims["exp"] <= now - SKEW:
        return 401, EXPIRED
    if claims["nbf"] is not None and now + claims["nbf"] > now + SKEW:
        return 401, NOT_YET_VALID
    audience = claims["aud"]
    if not (audience == AUDIENCE or (isinstance(audience, list) and AUDIENCE in audience)):
        return 401, BAD_AUDIENCE
    if case["path"] == "/scoped":
        scope = claims["scope"] or []
        granted = set(scope.split() if isinstance(scope, str) else scope)
        granted |= set(claims["permissions"] or [])
        if not {"read:messages", "write:messages"} <= granted:
            return 403, "insufficient_scope"
    if case["path"] == "/roles":
        roles = claims["roles"] or []
        held = {roles} if isinstance(roles, str) else set(roles)
        if not held & {"admin", "ops"}:
            return 403, "forbidden"
    return 200, None


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_a_signed_token_passes_only_when_every_rule_holds(
    client: Any,
    mint: Any,
    clock: Clock,
    signing_keys: list[SigningKey],
    issuer: str,
    data: st.DataObject,
) -> None:
    clock.now = float(int(clock.now))  # whole seconds: the offsets below stay exact
    case = data.draw(signed_cases(issuer), label="case")
    claims = dict(case["claims"])
    for name in ("exp", "nbf"):
        if claims[name] is not None:
            claims[name] = clock.now + claims[name]
    token = mint(
        key=signing_keys[case["signer"]],
        kid=case["kid"],
        algorithm=case["algorithm"],
        **claims,
    )
    response = client.get(case["path"], headers={"Authorization": f"Bearer {token}"})

    status, error = expected_answer(case, issuer, clock.now)
    event(f"expected {status} {error or ''}")
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 401:
        assert assert_documented_refusal(response) == error
    elif status == 403:
        assert response.get_json() == {"error": error}
        assert "WWW-Authenticate" not in response.headers
    elif case["path"] == "/private":
        assert response.get_json() == {"sub": claims["sub"], "scheme": "Auth0"}


@FUZZ
@given(data=st.data())
def test_a_valid_token_with_any_one_character_changed_is_refused(
    client: Any, mint: Any, data: st.DataObject
) -> None:
    token = mint()
    assert client.get("/private", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # The last character is drawn often: it carries the signature's unused bits.
    last = len(token) - 1
    index = data.draw(st.integers(min_value=0, max_value=last) | st.just(last), label="index")
    replacement = data.draw(st.sampled_from(B64URL + ".").filter(lambda c: c != token[index]))
    tampered = token[:index] + replacement + token[index + 1 :]
    event(f"segment {token[:index].count('.')}")
    assert_documented_refusal(
        client.get("/private", headers={"Authorization": f"Bearer {tampered}"})
    )
