"""Key rotation end to end, through a protected view and a real JWKS server: a key the
provider adds is found by one refresh, a key it removes stops working once the keys
are refreshed, and tokens with made-up ``kid`` values cost at most one fetch per
cooldown, in one process or across apps sharing Redis."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from redis_server import FAST_FAILING_OPTIONS
from support import bearer

TTL, COOLDOWN = 600, 30
KEY_NOT_FOUND = "The signature key was not found"


def status_and_description(client: Any, token: str) -> tuple[int, str | None]:
    response = client.get("/private", headers=bearer(token))
    return response.status_code, (response.get_json() or {}).get("error_description")


def test_a_new_key_is_accepted_after_one_refresh_and_a_removed_one_refused_after_the_next(
    make_app, jwks_server, signing_keys, mint, clock
):
    old, new = signing_keys[0], signing_keys[2]
    jwks_server.serve_keys(old.jwk)
    client = make_app().test_client()
    old_token = mint(key=old)
    assert status_and_description(client, old_token) == (200, None)

    # The provider publishes the next key before signing with it.
    jwks_server.serve_keys(old.jwk, new.jwk)
    clock.advance(COOLDOWN)
    new_token = mint(key=new)
    assert status_and_description(client, new_token) == (200, None)
    assert jwks_server.jwks_hits() == 2  # one refresh, caused by the unknown kid
    assert status_and_description(client, old_token) == (200, None)
    assert jwks_server.jwks_hits() == 2

    # Then retires the old key: tokens it signed work until the keys are refreshed.
    jwks_server.serve_keys(new.jwk)
    clock.advance(TTL - 1)
    assert status_and_description(client, old_token) == (200, None)
    clock.advance(1)
    assert status_and_description(client, old_token) == (401, KEY_NOT_FOUND)
    assert status_and_description(client, new_token) == (200, None)
    assert status_and_description(client, mint(key=old)) == (401, KEY_NOT_FOUND)
    assert jwks_server.jwks_hits() == 3


def test_a_new_key_is_refused_until_the_cooldown_since_the_last_fetch_is_over(
    make_app, jwks_server, signing_keys, mint, clock
):
    client = make_app().test_client()
    assert status_and_description(client, mint()) == (200, None)
    jwks_server.serve_keys(signing_keys[0].jwk, signing_keys[2].jwk)
    clock.advance(COOLDOWN - 1)
    token = mint(key=signing_keys[2])
    assert status_and_description(client, token) == (401, KEY_NOT_FOUND)
    clock.advance(1)
    assert status_and_description(client, token) == (200, None)
    assert jwks_server.jwks_hits() == 2


def flood(
    clients: list[Any],
    mint: Callable[..., str],
    clock: Any,
    hits: Callable[[], int],
    requests: int = 300,
    step: float = 0.5,
) -> list[float]:
    """Tokens with random kids, spread over the clients, the clock moving ``step``
    seconds per request; every tenth request carries a good token. Returns the times
    at which the provider was asked for the keys."""
    rng = random.Random(4)
    fetched_at: list[float] = []
    for n in range(requests):
        clock.advance(step)
        client = clients[n % len(clients)]
        before = hits()
        if n % 10 == 9:
            assert status_and_description(client, mint()) == (200, None)
        else:
            kid = f"{rng.getrandbits(64):016x}"
            assert status_and_description(client, mint(kid=kid)) == (401, KEY_NOT_FOUND)
        if hits() > before:
            fetched_at.extend([clock.now] * (hits() - before))
    return fetched_at


def assert_once_per_cooldown(fetched_at: list[float], start: float, end: float) -> None:
    """At most one fetch per cooldown, and not "never": each fetch comes with the first
    made-up kid after the cooldown (a good token or two may come first)."""
    late = COOLDOWN + 2 * 0.5
    gaps = [later - earlier for earlier, later in zip([start, *fetched_at], [*fetched_at, end])]
    assert all(COOLDOWN <= gap <= late for gap in gaps[:-1]), gaps
    assert gaps[-1] < late, gaps


def test_a_flood_of_random_kids_fetches_at_most_once_per_cooldown(
    make_app, jwks_server, mint, clock
):
    client = make_app().test_client()
    assert status_and_description(client, mint()) == (200, None)
    start = clock.now
    fetched_at = flood([client], mint, clock, jwks_server.jwks_hits)
    assert_once_per_cooldown(fetched_at, start, clock.now)


def test_a_flood_spread_over_apps_sharing_redis_fetches_at_most_once_per_cooldown(
    redis_server, make_app, jwks_server, mint, clock
):
    config = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": redis_server.url,
        "CACHE_OPTIONS": dict(FAST_FAILING_OPTIONS),
    }
    clients = [make_app(**config).test_client() for _ in range(4)]
    for client in clients:
        assert status_and_description(client, mint()) == (200, None)
    assert jwks_server.jwks_hits() == 1
    start = clock.now
    fetched_at = flood(clients, mint, clock, jwks_server.jwks_hits)
    assert_once_per_cooldown(fetched_at, start, clock.now)


def test_a_key_found_by_one_app_serves_every_app_sharing_redis(
    redis_server, make_app, jwks_server, signing_keys, mint, clock
):
    config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_server.url}
    clients = [make_app(**config).test_client() for _ in range(3)]
    for client in clients:
        assert status_and_description(client, mint()) == (200, None)
    jwks_server.serve_keys(signing_keys[0].jwk, signing_keys[2].jwk)
    clock.advance(COOLDOWN)
    token = mint(key=signing_keys[2])
    for client in clients:
        assert status_and_description(client, token) == (200, None)
    assert jwks_server.jwks_hits() == 2
