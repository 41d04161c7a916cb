"""The verified-token cache: what it remembers, for how long, and what empties it.

Behaviour only (no timing): a spy counts signature verifications, which is the work
a cache hit saves.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
from flask import Flask
from support import bearer

from flask_authflow import current_token, requires_auth
from flask_authflow.extension import get_state
from flask_authflow.keys import KeySet, VerificationKey
from flask_authflow.token import Token
from flask_authflow.token_cache import CachedToken, TokenCache
from flask_authflow.user_jwts import issue_token
from flask_authflow.user_secrets import UserSecretsStore
from flask_authflow.validation import Scheme

DEV_ISSUER = "dotnet-user-jwts"
DEV_AUDIENCE = "http://localhost:5000"


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every signature check (its algorithm) made by any key."""
    calls: list[str] = []
    original = VerificationKey.verifies

    def spy(self: VerificationKey, algorithm: str, signing_input: bytes, signature: bytes) -> bool:
        calls.append(algorithm)
        return original(self, algorithm, signing_input, signature)

    monkeypatch.setattr(VerificationKey, "verifies", spy)
    return calls


def token_cache(app: Flask) -> TokenCache[Any]:
    cache = get_state(app).authenticator.token_cache
    assert cache is not None
    return cache


def get_private(client: Any, token: str) -> Any:
    return client.get("/private", headers=bearer(token))


def remember(client: Any, token: str) -> None:
    """Present ``token`` twice: the cache admits a token on its second use."""
    for _ in range(2):
        assert get_private(client, token).status_code == 200


# -- hits -----------------------------------------------------------------------------


def test_a_repeated_token_is_verified_on_its_first_two_uses_only(app, client, mint, verifications):
    token = mint()
    assert get_private(client, token).status_code == 200
    assert token not in token_cache(app)  # a first use leaves only a mark
    assert get_private(client, token).status_code == 200
    assert token in token_cache(app)
    for _ in range(3):
        assert get_private(client, token).get_json() == {"sub": "auth0|user-1", "scheme": "Auth0"}
    assert len(verifications) == 2


def test_a_token_used_once_takes_no_entry(app, client, mint, verifications):
    for subject in ("a", "b", "c"):
        assert get_private(client, mint(sub=subject)).status_code == 200
    assert len(token_cache(app)) == 0
    assert len(verifications) == 3


def test_tokens_used_once_do_not_evict_a_cached_one(make_app, mint, verifications):
    app = make_app(TOKEN_CACHE_SIZE=2)
    client = app.test_client()
    kept = mint(sub="kept")
    remember(client, kept)
    for number in range(10):
        assert get_private(client, mint(sub=f"once-{number}")).status_code == 200
    assert len(verifications) == 12
    assert get_private(client, kept).status_code == 200
    assert len(verifications) == 12  # still a hit


def test_distinct_tokens_are_each_verified(client, mint, verifications):
    for subject in ("a", "b", "c"):
        assert get_private(client, mint(sub=subject)).get_json()["sub"] == subject
    assert len(verifications) == 3


def test_a_hit_still_asks_the_scheme_for_its_current_keys(app, client, mint, clock, monkeypatch):
    keys = get_state(app).authenticator.schemes.auth0.keys
    asked: list[tuple[str, Any]] = []
    key_set, fresh_key_set = keys.key_set, keys.fresh_key_set

    def key_set_spy(kid: str | None) -> KeySet:
        asked.append(("key_set", kid))
        return key_set(kid)

    def fresh_key_set_spy(now: float) -> KeySet | None:
        asked.append(("fresh_key_set", now))
        return fresh_key_set(now)

    monkeypatch.setattr(keys, "key_set", key_set_spy)
    monkeypatch.setattr(keys, "fresh_key_set", fresh_key_set_spy)
    token = mint()
    remember(client, token)  # two validations, which ask key_set()
    assert asked.count(("key_set", "key-0")) == 2
    asked.clear()
    get_private(client, token)
    assert asked == [("fresh_key_set", clock.now)]  # the hit: fresh keys, no key_set()


def test_a_hit_on_keys_due_for_a_refresh_asks_for_them_in_full(
    app, client, mint, clock, jwks_server, monkeypatch
):
    keys = get_state(app).authenticator.schemes.auth0.keys
    token = mint()
    remember(client, token)
    clock.advance(601)  # past the TTL: no fresh keys, so the hit asks key_set()
    assert keys.fresh_key_set(clock.now) is None
    assert get_private(client, token).status_code == 200
    assert jwks_server.jwks_hits() == 2
    assert keys.fresh_key_set(clock.now) is not None


def test_a_hit_gives_the_view_the_same_claims_as_validation(app, client, mint):
    token = mint(scope="read:messages write:messages", roles=["ops"])
    validated = client.get("/scoped", headers=bearer(token)).get_json()
    client.get("/scoped", headers=bearer(token))  # the second use caches the token
    assert token in token_cache(app)
    hit = client.get("/scoped", headers=bearer(token)).get_json()
    assert validated == hit == {"scopes": ["read:messages", "write:messages"]}
    assert client.get("/roles", headers=bearer(token)).get_json() == {"roles": ["ops"]}
    assert len(token_cache(app)) == 1


@pytest.mark.parametrize("spelling", ["  bearer   {} ", "Bearer  {}", "BEARER {}", "Bearer {}\t"])
def test_the_header_spelling_does_not_matter(client, mint, verifications, spelling):
    token = mint()
    remember(client, token)
    response = client.get("/private", headers={"Authorization": spelling.format(token)})
    assert response.status_code == 200
    assert len(verifications) == 2


def test_a_cached_token_with_something_after_it_is_still_malformed(app, client, mint):
    token = mint()
    remember(client, token)
    assert token in token_cache(app)
    for value in (f"Bearer {token} x", f"Bearer {token}.x", f"Bearer {token}, Bearer {token}"):
        response = client.get("/private", headers={"Authorization": value})
        assert response.status_code == 401


def test_public_views_do_not_fill_the_cache(app, client, mint, verifications):
    client.get("/public", headers=bearer(mint()))
    assert len(token_cache(app)) == 0
    assert verifications == []


# -- the bound --------------------------------------------------------------------------


def test_the_longest_held_token_is_evicted_beyond_the_size(make_app, mint, verifications):
    app = make_app(TOKEN_CACHE_SIZE=2)
    client = app.test_client()
    a, b, c = mint(sub="a"), mint(sub="b"), mint(sub="c")
    for token in (a, b, a, c):  # a hit does not renew a: c evicts it, the first in
        remember(client, token)
    assert len(verifications) == 6
    assert len(token_cache(app)) == 2
    get_private(client, b)
    assert len(verifications) == 6
    get_private(client, a)  # verified again, its mark still known: cached, and b goes
    assert len(verifications) == 7
    assert a in token_cache(app) and b not in token_cache(app) and c in token_cache(app)


def test_a_hit_writes_nothing(make_app, mint):
    app = make_app()
    client = app.test_client()
    a, b = mint(sub="a"), mint(sub="b")
    remember(client, a)
    remember(client, b)
    cache = token_cache(app)

    def state() -> tuple[Any, ...]:
        return list(cache._entries.items()), set(cache._marks), set(cache._older_marks)

    before = state()
    for token in (a, b, a):
        assert get_private(client, token).status_code == 200
    assert state() == before


def test_size_zero_turns_the_cache_off(make_app, mint, verifications):
    app = make_app(TOKEN_CACHE_SIZE=0)
    client = app.test_client()
    token = mint()
    assert get_private(client, token).status_code == 200
    assert get_private(client, token).status_code == 200
    assert get_state(app).authenticator.token_cache is None
    assert len(verifications) == 2


def test_the_default_size_is_4096(app):
    assert token_cache(app).max_size == 4096


# -- lifetime ---------------------------------------------------------------------------


def test_an_entry_is_dropped_at_exp(make_app, mint, clock, verifications):
    app = make_app(CLOCK_SKEW=0)
    client = app.test_client()
    expires = int(clock.now) + 100
    token = mint(exp=expires)
    remember(client, token)
    clock.now = expires - 0.5
    assert get_private(client, token).status_code == 200
    assert len(verifications) == 2
    clock.now = expires
    response = get_private(client, token)
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "The token is expired"
    assert token not in token_cache(app)


def test_the_clock_skew_applies_to_cached_tokens_as_to_new_ones(app, client, mint, clock):
    expires = int(clock.now) + 100
    token = mint(exp=expires)
    remember(client, token)
    assert token in token_cache(app)
    clock.now = expires + 59
    assert get_private(client, token).status_code == 200
    clock.now = expires + 60
    assert get_private(client, token).get_json()["error_description"] == "The token is expired"


def test_a_clock_set_back_before_nbf_is_not_trusted(app, client, mint, clock):
    not_before = int(clock.now) + 30  # accepted at once thanks to the 60 s skew
    token = mint(nbf=not_before)
    remember(client, token)
    assert token in token_cache(app)
    clock.now = not_before - 61
    response = get_private(client, token)
    assert response.get_json()["error_description"] == "The token is not valid yet"


# -- keys -------------------------------------------------------------------------------


def test_a_jwks_rotation_that_removes_the_key_ends_its_tokens(
    app, client, mint, clock, jwks_server, signing_keys
):
    token = mint()  # signed by key-0
    remember(client, token)
    assert token in token_cache(app)
    jwks_server.serve_keys(signing_keys[1].jwk, signing_keys[2].jwk)
    clock.advance(601)  # past AUTHFLOW_JWKS_CACHE_TTL: the next request refreshes
    response = get_private(client, token)
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "The signature key was not found"
    assert jwks_server.jwks_hits() == 2
    assert token not in token_cache(app)


def test_a_refetched_key_set_empties_the_entries_of_the_old_one(
    app, client, mint, clock, jwks_server, signing_keys, verifications
):
    kept, other = mint(sub="kept"), mint(sub="other")
    remember(client, kept)
    remember(client, other)
    assert other in token_cache(app)
    clock.advance(601)
    assert get_private(client, kept).status_code == 200  # same keys, fetched anew
    assert jwks_server.jwks_hits() == 2
    assert len(verifications) == 5
    assert other not in token_cache(app)
    assert get_private(client, kept).status_code == 200
    assert len(verifications) == 5


def test_cached_tokens_keep_working_while_the_provider_is_down(
    client, mint, clock, jwks_server, verifications
):
    token = mint()
    remember(client, token)
    jwks_server.serve(status=500)
    clock.advance(601)
    assert get_private(client, token).status_code == 200
    assert jwks_server.jwks_hits() == 2
    assert len(verifications) == 2  # the failed refresh kept the same key set


def test_a_hit_answers_503_when_no_keys_can_be_had(make_app, mint, clock, jwks_server):
    app = make_app(JWKS_CACHE_TTL=600, JWKS_MAX_STALE=600)
    client = app.test_client()
    token = mint(exp=int(clock.now) + 7200)
    remember(client, token)
    assert token in token_cache(app)
    jwks_server.serve(status=500)
    clock.advance(601)
    response = get_private(client, token)
    assert response.status_code == 503
    assert response.get_json() == {"error": "temporarily_unavailable"}


def dev_token(store: UserSecretsStore, clock: Any) -> str:
    key = store.get_or_create_key("UserJwts", DEV_ISSUER)
    now = datetime.fromtimestamp(clock.now, timezone.utc)
    token, _ = issue_token(
        key, name="dev", audiences=[DEV_AUDIENCE], issuer=DEV_ISSUER,
        not_before=now, expires_at=now.replace(year=now.year + 1), issued_at=now,
    )
    return token


def test_a_development_key_reset_ends_its_tokens(make_app, clock, tmp_path, verifications):
    app = make_app(ENV="development", USER_SECRETS_ID="cache-test")
    client = app.test_client()
    store = UserSecretsStore(tmp_path / "usersecrets", "cache-test")
    token = dev_token(store, clock)
    assert get_private(client, token).get_json() == {"sub": "dev", "scheme": "UserJwts"}
    remember(client, token)  # its second and third use: cached, then a hit
    assert verifications == ["HS256"] * 2
    store.reset_key("UserJwts", DEV_ISSUER)
    clock.advance(2)  # the key watcher looks at the file at most once a second
    response = get_private(client, token)
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "The signature key was not found"
    assert token not in token_cache(app)
    assert get_private(client, dev_token(store, clock)).status_code == 200


# -- what views receive ----------------------------------------------------------------


def test_a_view_cannot_change_what_the_next_request_sees(make_app, mint):
    app = make_app()
    refused: list[str] = []

    @app.get("/meddle")
    @requires_auth
    def meddle() -> dict[str, Any]:
        token = current_token._get_current_object()  # type: ignore[attr-defined]
        attempts = {
            "claims item": lambda: token.claims.__setitem__("sub", "admin"),
            "nested claim": lambda: token.claims["groups"].append("admins"),
            "nested object": lambda: token.claims["meta"].__setitem__("tier", "gold"),
            "scopes": lambda: token.scopes.add("admin:all"),
            "attribute": lambda: setattr(token, "scheme", "UserJwts"),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
            except (TypeError, AttributeError, dataclasses.FrozenInstanceError):
                refused.append(name)
        return {"sub": token.subject}

    client = app.test_client()
    token = mint(scope="read:messages", groups=["users"], meta={"tier": "free"})
    for _ in range(3):  # validated, validated and cached, a hit
        client.get("/meddle", headers=bearer(token))
    assert refused == ["claims item", "nested claim", "nested object", "scopes", "attribute"] * 3
    routed = token_cache(app).get(token)
    assert routed is not None and routed.cached is not None
    cached = routed.cached
    assert cached.token.claims["sub"] == "auth0|user-1"
    assert cached.token.claims["groups"] == ("users",)
    assert cached.token.claims["meta"] == {"tier": "free"}
    assert cached.token.scopes == frozenset({"read:messages"})
    assert cached.token.scheme == "Auth0"
    assert get_private(client, token).get_json() == {"sub": "auth0|user-1", "scheme": "Auth0"}


# -- failures ---------------------------------------------------------------------------


def failing_tokens(mint: Any, clock: Any, signing_keys: Any) -> dict[str, str]:
    header, _, signature = mint().split(".")
    tampered = ".".join([header, mint(sub="someone-else").split(".")[1], signature])
    return {
        "The token is expired": mint(exp=int(clock.now) - 120),
        "The token is not valid yet": mint(nbf=int(clock.now) + 120),
        "The audience is invalid": mint(aud="https://other.example.test"),
        "The signature is invalid": tampered,
        "The signature key was not found": mint(key=signing_keys[2], kid=False),
        "The issuer is invalid": jwt.encode(
            {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "exp": int(clock.now) + 60},
            "s" * 32, algorithm="HS256",
        ),
    }


def test_failures_are_never_cached(app, client, mint, clock, signing_keys, verifications):
    checked_signatures = 0
    for description, token in failing_tokens(mint, clock, signing_keys).items():
        counts = []
        for _ in range(2):
            before = len(verifications)
            response = get_private(client, token)
            assert response.get_json()["error_description"] == description
            counts.append(len(verifications) - before)
        assert counts[1] == counts[0], description  # the second try did the same work
        checked_signatures += counts[0]
    cache = token_cache(app)
    assert len(cache) == 0
    assert cache._marks == set() and cache._older_marks == set()  # not even a mark
    assert checked_signatures > 0


def test_a_token_that_failed_is_cached_on_its_second_pass(app, client, mint, clock):
    token = mint(nbf=int(clock.now) + 120)
    for _ in range(2):
        assert get_private(client, token).status_code == 401
    clock.advance(120)
    assert get_private(client, token).status_code == 200
    assert token not in token_cache(app)  # the failures left no mark
    assert get_private(client, token).status_code == 200
    assert token in token_cache(app)


# -- TokenCache on its own --------------------------------------------------------------


class NoKeys:
    def key_set(self, kid: str | None) -> KeySet:
        return KeySet(())


def entry(version: float = 1.0, scheme: str = "Auth0", exp: float = 2e9) -> CachedToken:
    token = Token.from_claims("raw", scheme, {"sub": "s", "exp": exp})
    return CachedToken.of(
        token,
        Scheme(name=scheme, issuer="i", audiences=frozenset(), algorithms=frozenset(), keys=NoKeys()),
        kid=None,
        key_version=version,
    )


def test_discard_leaves_an_entry_another_request_renewed():
    cache: TokenCache[CachedToken] = TokenCache(4)
    old, new = entry(), entry()
    cache.put("t", new)
    cache.discard("t", old)
    assert cache.get("t") is new


def test_discard_where_drops_exactly_the_matching_entries():
    cache: TokenCache[CachedToken] = TokenCache(4)
    cache.put("a", entry(version=1.0))
    cache.put("b", entry(version=2.0))
    cache.put("c", entry(version=1.0, scheme="UserJwts"))
    assert cache.discard_where(lambda e: e.scheme.name == "Auth0" and e.key_version != 2.0) == 1
    assert "a" not in cache and "b" in cache and "c" in cache


def test_admits_says_yes_from_the_second_use():
    cache: TokenCache[CachedToken] = TokenCache(4)
    assert [cache.admits("t"), cache.admits("t"), cache.admits("t")] == [False, True, True]


def test_the_marks_are_bounded_and_the_newest_are_kept():
    cache: TokenCache[CachedToken] = TokenCache(3)
    for number in range(10):
        assert not cache.admits(f"token-{number}")
        assert len(cache._marks) <= 3 and len(cache._older_marks) <= 3
    known = [hash(f"token-{number}") in cache._marks | cache._older_marks for number in range(10)]
    # Two generations: tokens 6 to 8, and 9; the older ones are forgotten.
    assert known == [False] * 6 + [True] * 4
    assert cache.admits("token-6")


def test_clear_forgets_the_marks():
    cache: TokenCache[CachedToken] = TokenCache(4)
    cache.admits("t")
    cache.clear()
    assert not cache.admits("t")


def test_a_cache_needs_a_positive_size():
    with pytest.raises(ValueError):
        TokenCache[CachedToken](0)


def test_concurrent_use_keeps_the_bound():
    cache: TokenCache[CachedToken] = TokenCache(50)
    shared = entry()
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for number in range(2000):
                if cache.admits(f"{offset}-{number % 300}"):
                    cache.put(f"{offset}-{number}", shared)
                cache.get(f"{offset}-{number - 1}")
                cache.discard(f"{offset}-{number - 2}", shared)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50
    # Each generation of marks may overshoot by the threads that raced its last check.
    assert len(cache._marks) <= 50 + 4 and len(cache._older_marks) <= 50 + 4

