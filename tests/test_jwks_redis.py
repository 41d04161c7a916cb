"""The key cache shared through a real Redis: one fetch per deployment, a shared
cooldown, and requests that keep succeeding when Redis stops or hangs.

Each ``JwksCache`` (or app) with its own Redis client stands for one worker process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask_caching import Cache
from redis_server import FAST_FAILING_OPTIONS, SilentServer
from support import bearer

from flask_authflow.errors import KeysUnavailable
from flask_authflow.extension import get_state
from flask_authflow.jwks import BACKEND_RETRY_INTERVAL, JwksCache, JwksPolicy

POLICY = JwksPolicy(ttl=600, cooldown=30, max_stale=3600, fetch_timeout=2)


def redis_backend(url: str, **options: Any) -> Any:
    """A flask-caching RedisCache built the way Flask-AuthFlow builds it, with its own
    connection pool (as a separate process would have)."""
    app = Flask("backend")
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_OPTIONS": {**FAST_FAILING_OPTIONS, **options},
        },
    )
    return app.extensions["cache"][cache]


def redis_config(url: str) -> dict[str, Any]:
    """``make_app`` overrides for an app whose key cache lives in Redis at ``url``."""
    return {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": url,
        "CACHE_OPTIONS": dict(FAST_FAILING_OPTIONS),
    }


def key_cache(app: Flask) -> JwksCache:
    auth0 = get_state(app).authenticator.schemes.auth0
    assert auth0 is not None and isinstance(auth0.keys, JwksCache)
    return auth0.keys


class WaitRecorder:
    """A ``sleep`` for JwksCache that records which instances waited for another's
    fetch, then passes real time (the waiting is real: other threads do the fetching)."""

    def __init__(self) -> None:
        self.waiting: set[int] = set()
        self.changed = threading.Condition()

    def for_instance(self, number: int) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            with self.changed:
                self.waiting.add(number)
                self.changed.notify_all()
            time.sleep(seconds)

        return sleep

    def wait_for(self, count: int, timeout: float = 10) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.waiting) >= count, timeout=timeout)


class ThreadBurst:
    """Runs each call in its own thread, released together; ``join`` gives their
    results (or the exceptions they raised)."""

    def __init__(self, calls: list[Callable[[], Any]], timeout: float = 20) -> None:
        self.timeout = timeout
        self.results: list[Any] = [None] * len(calls)
        barrier = threading.Barrier(len(calls))

        def run(index: int) -> None:
            barrier.wait(timeout=timeout)
            try:
                self.results[index] = calls[index]()
            except Exception as exc:  # noqa: BLE001 - reported to the test as a result
                self.results[index] = exc

        self.threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
        for thread in self.threads:
            thread.start()

    def join(self) -> list[Any]:
        for thread in self.threads:
            thread.join(timeout=self.timeout)
        assert not any(thread.is_alive() for thread in self.threads)
        return self.results


# -- one fetch per deployment ------------------------------------------------------


def test_a_cold_start_of_many_instances_fetches_once(redis_server, jwks_server, signing_keys):
    gate = threading.Event()
    jwks_server.answer.gate = gate
    recorder = WaitRecorder()
    instances = [
        JwksCache(
            jwks_server.jwks_uri,
            redis_backend(redis_server.url),
            POLICY,
            sleep=recorder.for_instance(n),
        )
        for n in range(6)
    ]
    burst = ThreadBurst([lambda c=cache: c.key_set(signing_keys[0].kid) for cache in instances])
    # Hold the provider's answer until every other instance is waiting for it.
    assert jwks_server.hit_event.wait(timeout=10)
    assert recorder.wait_for(5)
    gate.set()
    results = burst.join()

    assert all(not isinstance(result, Exception) for result in results), results
    assert all(result.knows(signing_keys[0].kid) for result in results)
    assert jwks_server.jwks_hits() == 1
    assert sorted(cache.fetch_count for cache in instances) == [0, 0, 0, 0, 0, 1]
    assert len({result.version for result in results}) == 1


def test_an_unknown_kid_during_another_instances_fetch_waits_for_its_result(
    redis_server, jwks_server, signing_keys, clock
):
    new = signing_keys[2]
    recorder = WaitRecorder()
    first, second = (
        JwksCache(
            jwks_server.jwks_uri,
            redis_backend(redis_server.url),
            POLICY,
            clock=clock,
            sleep=recorder.for_instance(n),
        )
        for n in range(2)
    )
    first.key_set(None)
    second.key_set(None)
    assert jwks_server.jwks_hits() == 1

    jwks_server.serve_keys(signing_keys[0].jwk, new.jwk)
    gate = threading.Event()
    jwks_server.answer.gate = gate
    jwks_server.hit_event.clear()
    clock.advance(31)
    fetching = ThreadBurst([lambda: first.key_set(new.kid)])
    assert jwks_server.hit_event.wait(timeout=10)  # the first is fetching now
    asking = ThreadBurst([lambda: second.key_set(new.kid)])
    assert recorder.wait_for(1)
    gate.set()
    results = fetching.join() + asking.join()

    assert all(not isinstance(result, Exception) and result.knows(new.kid) for result in results)
    assert jwks_server.jwks_hits() == 2
    assert (first.fetch_count, second.fetch_count) == (2, 0)


def test_a_new_kid_is_fetched_once_for_every_instance(
    redis_server, jwks_server, clock, signing_keys
):
    new = signing_keys[2]
    instances = [
        JwksCache(jwks_server.jwks_uri, redis_backend(redis_server.url), POLICY, clock=clock)
        for _ in range(3)
    ]
    for cache in instances:
        cache.key_set(signing_keys[0].kid)
    assert jwks_server.jwks_hits() == 1

    jwks_server.serve_keys(signing_keys[0].jwk, new.jwk)
    clock.advance(31)
    for cache in instances:
        assert cache.key_set(new.kid).knows(new.kid)
    assert jwks_server.jwks_hits() == 2
    assert [cache.fetch_count for cache in instances] == [2, 0, 0]


def test_the_cooldown_after_a_failed_attempt_holds_for_every_instance(
    redis_server, jwks_server, clock, signing_keys
):
    instances = [
        JwksCache(jwks_server.jwks_uri, redis_backend(redis_server.url), POLICY, clock=clock)
        for _ in range(3)
    ]
    good = [cache.key_set(None) for cache in instances]
    jwks_server.serve(status=503)
    clock.advance(600)  # every copy is stale now

    for cache, keys in zip(instances, good):
        assert cache.key_set(None) is keys  # the stale keys keep serving
        assert cache.key_set("a-random-kid") is keys
    assert jwks_server.jwks_hits() == 2  # one failed attempt for all three

    late = JwksCache(jwks_server.jwks_uri, redis_backend(redis_server.url), POLICY, clock=clock)
    assert late.key_set(signing_keys[0].kid).knows(signing_keys[0].kid)  # from the shared entry
    assert jwks_server.jwks_hits() == 2

    clock.advance(30)
    jwks_server.serve_keys(signing_keys[2].jwk)
    for cache in instances:
        assert cache.key_set(None).knows(signing_keys[2].kid)
    assert jwks_server.jwks_hits() == 3


def test_a_cold_instance_during_a_shared_cooldown_answers_unavailable_with_its_end(
    redis_server, jwks_server, clock
):
    jwks_server.serve(status=500)
    first = JwksCache(jwks_server.jwks_uri, redis_backend(redis_server.url), POLICY, clock=clock)
    with pytest.raises(KeysUnavailable):
        first.key_set(None)
    clock.advance(12)
    second = JwksCache(jwks_server.jwks_uri, redis_backend(redis_server.url), POLICY, clock=clock)
    with pytest.raises(KeysUnavailable) as refused:
        second.key_set(None)
    assert refused.value.retry_after == 18
    assert jwks_server.jwks_hits() == 1


def test_an_abandoned_lock_does_not_hold_up_a_cold_start(redis_server, jwks_server, clock):
    # A process died between SETNX and EXPIRE: the lock has no expiry and an old deadline.
    backend = redis_backend(redis_server.url)
    lock_key = f"authflow:jwks-lock:{jwks_server.jwks_uri}"
    backend.set(lock_key, {"owner": "dead", "until": clock.now - 60}, timeout=0)
    waits: list[float] = []
    cache = JwksCache(jwks_server.jwks_uri, backend, POLICY, clock=clock, sleep=waits.append)

    assert cache.key_set(None) is not None
    assert waits == []
    assert jwks_server.jwks_hits() == 1
    assert backend.get(lock_key) is None  # released after the fetch


def test_a_lock_whose_holder_died_mid_fetch_is_taken_over_when_it_runs_out(
    redis_server, jwks_server, clock
):
    backend = redis_backend(redis_server.url)
    lock_key = f"authflow:jwks-lock:{jwks_server.jwks_uri}"
    backend.set(lock_key, {"owner": "dead", "until": clock.now + 5}, timeout=0)
    cache = JwksCache(jwks_server.jwks_uri, backend, POLICY, clock=clock, sleep=clock.advance)
    start = clock.now

    assert cache.key_set(None) is not None
    assert jwks_server.jwks_hits() == 1
    # Waited for the holder (deadline + a margin for clock differences), not forever.
    assert 5 <= clock.now - start <= 5 + 2 * (2 * POLICY.fetch_timeout + 1) + 1


# -- several apps on one Redis -------------------------------------------------------


def test_several_apps_on_one_redis_fetch_once(redis_server, make_app, mint, jwks_server):
    apps = [make_app(**redis_config(redis_server.url)) for _ in range(3)]
    for app in apps:
        response = app.test_client().get("/private", headers=bearer(mint()))
        assert response.status_code == 200, response.get_json()
    assert jwks_server.jwks_hits() == 1
    assert [key_cache(app).fetch_count for app in apps] == [1, 0, 0]


# -- Redis down or hanging ----------------------------------------------------------


def test_requests_succeed_when_redis_stops_mid_run(
    redis_server, make_app, mint, jwks_server, clock, caplog
):
    caplog.set_level(logging.INFO, logger="flask_authflow")
    token = mint()
    client = make_app(JWKS_CACHE_TTL=20, **redis_config(redis_server.url)).test_client()
    assert client.get("/private", headers=bearer(token)).status_code == 200

    redis_server.stop()
    assert client.get("/private", headers=bearer(token)).status_code == 200  # from memory
    for _ in range(5):
        clock.advance(21)  # stale: each refresh finds Redis gone and fetches directly
        assert client.get("/private", headers=bearer(token)).status_code == 200
    assert jwks_server.jwks_hits() == 1 + 5

    # Logged when it started failing and again a minute later, not at every failure.
    warnings = [
        r.getMessage() for r in caplog.records if "shared key cache failed" in r.getMessage()
    ]
    assert len(warnings) == 2
    assert "ConnectionError" in warnings[0]
    assert token not in caplog.text

    started = make_app(**redis_config(redis_server.url)).test_client()  # a worker starting now
    assert started.get("/private", headers=bearer(token)).status_code == 200
    assert jwks_server.jwks_hits() == 1 + 5 + 1


def test_sharing_resumes_when_redis_comes_back(redis_server, make_app, mint, jwks_server, clock):
    app = make_app(**redis_config(redis_server.url))
    client = app.test_client()
    redis_server.stop()
    assert client.get("/private", headers=bearer(mint())).status_code == 200
    assert jwks_server.jwks_hits() == 1

    redis_server.start()  # empty: it keeps nothing on disk
    clock.advance(BACKEND_RETRY_INTERVAL + 600)
    assert client.get("/private", headers=bearer(mint())).status_code == 200
    assert jwks_server.jwks_hits() == 2  # published to Redis again

    other = make_app(**redis_config(redis_server.url))
    assert other.test_client().get("/private", headers=bearer(mint())).status_code == 200
    assert jwks_server.jwks_hits() == 2


def test_a_redis_that_never_answers_costs_one_bounded_delay(
    make_app, mint, jwks_server, clock, caplog
):
    # A silent server accepts the connection and never answers: each backend call
    # costs one socket timeout and a new connection. So the count of connections is
    # the count of delays paid (no wall-clock timing here).
    with SilentServer() as silent:
        app = make_app(JWKS_REFRESH_COOLDOWN=5, **redis_config(silent.url))
        client = app.test_client()
        response = client.get("/private", headers=bearer(mint()))
        assert response.status_code == 200
        # Every backend call of the refresh would time out; only the first one is made.
        assert silent.accepted == 1

        clock.advance(6)  # the cooldown is over, the backend still left alone
        response = client.get("/private", headers=bearer(mint(kid="unknown-kid")))
        assert response.status_code == 401
        assert silent.accepted == 1
        assert jwks_server.jwks_hits() == 2

        clock.advance(BACKEND_RETRY_INTERVAL)  # tried again, once
        assert client.get("/private", headers=bearer(mint(kid="unknown-kid"))).status_code == 401
        assert silent.accepted == 2
    assert "shared key cache failed (TimeoutError" in caplog.text
    assert jwks_server.jwks_hits() == 3
