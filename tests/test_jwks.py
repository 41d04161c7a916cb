"""JwksCache: fetch once, cache, refresh rules, failures, sharing through a cache backend."""

from __future__ import annotations

import json
import threading

import pytest
from flask_caching.backends import SimpleCache
from jwks_server import JwksServer

from flask_authflow.errors import KeysUnavailable
from flask_authflow.jwks import JwksCache, JwksPolicy

POLICY = JwksPolicy(ttl=600, cooldown=30, max_stale=3600, fetch_timeout=2)


@pytest.fixture
def cache(jwks_server, clock):
    return JwksCache(jwks_server.jwks_uri, SimpleCache(), POLICY, clock=clock)


def test_first_use_fetches_and_later_uses_do_not(cache, jwks_server, signing_keys):
    keys = cache.key_set(signing_keys[0].kid)
    assert keys.knows(signing_keys[0].kid)
    for _ in range(20):
        assert cache.key_set(signing_keys[1].kid) is keys
    assert jwks_server.jwks_hits() == 1


def test_keys_are_refetched_after_the_ttl(cache, jwks_server, clock):
    first = cache.key_set(None)
    clock.advance(599)
    assert cache.key_set(None) is first
    clock.advance(1)
    assert cache.key_set(None) is not first
    assert jwks_server.jwks_hits() == 2


def test_fresh_key_set_answers_from_memory_until_the_ttl(cache, jwks_server, clock):
    assert cache.fresh_key_set(clock.now) is None, "cold: nothing in memory"
    assert jwks_server.jwks_hits() == 0, "and asking does not fetch"
    keys = cache.key_set(None)
    assert cache.fresh_key_set(clock.now + 599) is keys
    assert cache.fresh_key_set(clock.now + 600) is None
    assert jwks_server.jwks_hits() == 1


def test_concurrent_cold_requests_cause_one_fetch(cache, jwks_server, signing_keys):
    gate = threading.Event()
    jwks_server.serve_keys(signing_keys[0].jwk)
    jwks_server.answer.gate = gate
    barrier = threading.Barrier(8)
    results = []

    def cold_request():
        barrier.wait(timeout=10)
        results.append(cache.key_set(signing_keys[0].kid))

    threads = [threading.Thread(target=cold_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert jwks_server.hit_event.wait(timeout=10)
    gate.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 8
    assert len({id(keys) for keys in results}) == 1
    assert jwks_server.jwks_hits() == 1


def test_unknown_kid_refreshes_at_most_once_per_cooldown(cache, jwks_server, clock, signing_keys):
    cache.key_set(signing_keys[0].kid)
    for n in range(10):
        assert not cache.key_set(f"random-{n}").knows(f"random-{n}")
    assert jwks_server.jwks_hits() == 1  # the first fetch counts as the last attempt
    clock.advance(30)
    cache.key_set("random-again")
    cache.key_set("and-again")
    assert jwks_server.jwks_hits() == 2


def test_a_new_key_is_found_by_one_refresh(cache, jwks_server, clock, signing_keys):
    cache.key_set(signing_keys[0].kid)
    jwks_server.serve_keys(signing_keys[0].jwk, signing_keys[2].jwk)
    clock.advance(31)
    assert cache.key_set(signing_keys[2].kid).knows(signing_keys[2].kid)
    assert jwks_server.jwks_hits() == 2


def test_a_failed_refresh_keeps_the_last_good_keys(cache, jwks_server, clock, signing_keys):
    good = cache.key_set(None)
    jwks_server.serve(status=503)
    clock.advance(600)
    assert cache.key_set(None) is good
    assert cache.key_set(None) is good
    assert jwks_server.jwks_hits() == 2  # no retry before the cooldown
    clock.advance(30)
    assert cache.key_set(None) is good
    assert jwks_server.jwks_hits() == 3
    jwks_server.serve_keys(signing_keys[2].jwk)
    clock.advance(30)
    assert cache.key_set(None).knows(signing_keys[2].kid)


def test_cold_failure_is_unavailable_with_retry_after(cache, jwks_server, clock):
    jwks_server.serve(status=500)
    with pytest.raises(KeysUnavailable) as first:
        cache.key_set(None)
    assert first.value.retry_after == 30
    clock.advance(10)
    with pytest.raises(KeysUnavailable) as second:
        cache.key_set(None)
    assert second.value.retry_after == 20
    assert jwks_server.jwks_hits() == 1


def test_stale_keys_end_after_max_stale(cache, jwks_server, clock):
    cache.key_set(None)
    jwks_server.serve(status=500)
    clock.advance(3599)
    cache.key_set(None)
    clock.advance(2)
    with pytest.raises(KeysUnavailable):
        cache.key_set(None)


@pytest.mark.parametrize(
    "status, body",
    [
        (200, b"<html>maintenance</html>"),
        (200, b'{"keys": "nope"}'),
        (200, json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).encode()),
        (200, b'{"keys": [], "n": NaN}'),
        (404, b"{}"),
        (500, b"{}"),
    ],
)
def test_bad_documents_are_failed_fetches(cache, jwks_server, status, body):
    jwks_server.serve(status=status, body=body)
    with pytest.raises(KeysUnavailable):
        cache.key_set(None)


def test_a_document_with_a_duplicate_member_is_a_failed_fetch(cache, jwks_server, signing_keys):
    # The last "keys" alone would be a usable set: readers must not pick one silently.
    body = '{"keys": [], "keys": [%s]}' % json.dumps(signing_keys[0].jwk)
    jwks_server.serve(body=body.encode())
    with pytest.raises(KeysUnavailable):
        cache.key_set(None)


def test_a_body_over_the_size_cap_is_a_failed_fetch(cache, jwks_server, signing_keys):
    jwks_server.serve_json({"keys": [signing_keys[0].jwk], "padding": "x" * 300_000})
    with pytest.raises(KeysUnavailable):
        cache.key_set(None)


def test_a_redirect_to_another_host_is_not_followed(cache, jwks_server, signing_keys):
    with JwksServer() as other:
        other.serve_keys(signing_keys[0].jwk)
        jwks_server.redirect(other.jwks_uri.replace("127.0.0.1", "localhost"))
        with pytest.raises(KeysUnavailable):
            cache.key_set(None)
        assert other.jwks_hits() == 0


def test_a_redirect_on_the_same_host_is_followed(jwks_server, clock, signing_keys):
    jwks_server.redirects["/old"] = "/.well-known/jwks.json"
    moved = JwksCache(jwks_server.url + "/old", None, POLICY, clock=clock)
    assert moved.key_set(None).knows(signing_keys[0].kid)
    assert jwks_server.hits == ["/old", "/.well-known/jwks.json"]


def test_a_hanging_provider_times_out(jwks_server, clock):
    jwks_server.answer.hang = True
    cache = JwksCache(jwks_server.jwks_uri, None, JwksPolicy(fetch_timeout=0.3), clock=clock)
    with pytest.raises(KeysUnavailable):
        cache.key_set(None)


def test_connection_refused(clock):
    with JwksServer() as server:
        uri = server.jwks_uri
    cache = JwksCache(uri, None, POLICY, clock=clock)
    with pytest.raises(KeysUnavailable):
        cache.key_set(None)


def test_processes_sharing_a_backend_fetch_once(jwks_server, clock, signing_keys):
    backend = SimpleCache()
    first = JwksCache(jwks_server.jwks_uri, backend, POLICY, clock=clock)
    second = JwksCache(jwks_server.jwks_uri, backend, POLICY, clock=clock)
    first.key_set(None)
    assert second.key_set(signing_keys[0].kid).knows(signing_keys[0].kid)
    assert jwks_server.jwks_hits() == 1


def test_shared_entry_outlives_the_ttl_for_stale_use(jwks_server, clock, signing_keys):
    backend = SimpleCache()
    JwksCache(jwks_server.jwks_uri, backend, POLICY, clock=clock).key_set(None)
    jwks_server.serve(status=503)
    clock.advance(700)
    late = JwksCache(jwks_server.jwks_uri, backend, POLICY, clock=clock)
    assert late.key_set(signing_keys[0].kid).knows(signing_keys[0].kid)


class BrokenBackend:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache is down")

        return fail


def test_a_broken_backend_does_not_stop_validation(jwks_server, clock, signing_keys, caplog):
    cache = JwksCache(jwks_server.jwks_uri, BrokenBackend(), POLICY, clock=clock)
    assert cache.key_set(signing_keys[0].kid).knows(signing_keys[0].kid)
    assert "shared key cache failed" in caplog.text
