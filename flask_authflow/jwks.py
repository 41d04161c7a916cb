"""JwksCache: an identity provider's signing keys, fetched once and shared.

Keys live at two levels. Each process keeps the parsed :class:`KeySet` in memory and
serves every request from it. The raw document, with its fetch time, also lives in a
shared cache backend (flask-caching's, e.g. Redis), so that a deployment of many
processes fetches once per TTL. A process reads the shared entry only when its own
copy is stale, or for an unknown ``kid``.

Refresh rules: a stale copy (older than ``ttl``) is refreshed; an unknown ``kid``
causes a refresh only when the last attempt is older than ``cooldown``; after a failed
attempt the next waits for ``cooldown``, and the last good keys stay in use until they
are ``max_stale`` old. Concurrent refreshes collapse into one fetch per process (a
lock) and, through an atomic ``add`` in the shared backend, one per deployment.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import KeysUnavailable
from .jwks_fetch import FetchFailed, fetch_jwk_set
from .keys import KeySet, UnusableKeySet, parse_jwk_set

logger = logging.getLogger("flask_authflow")

#: How often waiting processes look for another process's fetch result.
POLL_INTERVAL = 0.05
#: At most one "cache backend failed" warning per this many seconds.
BACKEND_WARNING_INTERVAL = 60.0


_OWNER_VANISHED = object()


class CacheBackend(Protocol):
    """The part of a cachelib / flask-caching backend this module uses."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def add(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def delete(self, key: str) -> Any: ...


@dataclass(frozen=True)
class JwksPolicy:
    ttl: float = 600.0
    cooldown: float = 30.0
    max_stale: float = 86400.0
    fetch_timeout: float = 5.0


class JwksCache:
    """The signing keys published at ``uri``; implements the ``KeySource`` protocol."""

    def __init__(
        self,
        uri: str,
        backend: CacheBackend | None = None,
        policy: JwksPolicy = JwksPolicy(),
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        fetch: Callable[[str, float], Any] | None = None,
    ) -> None:
        self.uri = uri
        self.policy = policy
        self._backend = backend
        self._clock = clock
        self._sleep = sleep
        self._fetch = fetch or (lambda url, timeout: fetch_jwk_set(url, timeout=timeout))
        self._keys: KeySet | None = None
        self._last_attempt: float | None = None
        self._last_failed = False
        self._lock = threading.Lock()
        self._last_backend_warning = -math.inf
        self._last_unknown_kid_check = -math.inf
        self._entry_key = f"authflow:jwks:{uri}"
        self._attempt_key = f"authflow:jwks-attempt:{uri}"
        self._lock_key = f"authflow:jwks-lock:{uri}"
        #: Number of HTTP fetches this process made (for tests and metrics).
        self.fetch_count = 0

    # -- the KeySource protocol ---------------------------------------------------

    def key_set(self, kid: str | None) -> KeySet:
        now = self._clock()
        keys = self._keys
        if keys is None or now - keys.version >= self.policy.ttl:
            keys = self._refresh(seen=keys, unknown_kid=None)
        if kid is not None and keys is not None and not keys.knows(kid):
            keys = self._refresh(seen=keys, unknown_kid=kid)
        if keys is None or self._clock() - keys.version > self.policy.max_stale:
            raise KeysUnavailable(retry_after=self._seconds_until_next_attempt())
        return keys

    @property
    def current(self) -> KeySet | None:
        """The keys in memory, without any refresh."""
        return self._keys

    # -- refreshing ---------------------------------------------------------------

    def _refresh(self, seen: KeySet | None, unknown_kid: str | None) -> KeySet | None:
        if unknown_kid is not None and self._unknown_kid_recently_checked():
            return seen
        # A stale copy keeps serving while another thread refreshes it; only a cold
        # start or an unknown kid has to wait for the result.
        blocking = seen is None or unknown_kid is not None
        if not self._lock.acquire(blocking=blocking):
            return seen
        try:
            keys = self._keys
            if keys is not seen and keys is not None and self._good_for(keys, unknown_kid):
                return keys  # another thread refreshed while this one waited
            if unknown_kid is not None:
                self._last_unknown_kid_check = self._clock()
            keys = self._adopt_shared() or keys
            if keys is not None and keys is not seen and self._good_for(keys, unknown_kid):
                return keys
            if not self._attempt_allowed(keys, unknown_kid):
                return keys
            return self._fetch_once_for_everyone() or self._keys
        finally:
            self._lock.release()

    def _unknown_kid_recently_checked(self) -> bool:
        """Unknown kids look at the shared backend at most once per cooldown per process,
        so a flood of random kids costs neither fetches nor backend round trips."""
        last = max(self._last_attempt or -math.inf, self._last_unknown_kid_check)
        return self._clock() - last < self.policy.cooldown

    def _good_for(self, keys: KeySet, unknown_kid: str | None) -> bool:
        fresh = self._clock() - keys.version < self.policy.ttl
        return fresh and (unknown_kid is None or keys.knows(unknown_kid))

    def _attempt_allowed(self, keys: KeySet | None, unknown_kid: str | None) -> bool:
        """A stale copy refreshes at once, unless the last attempt failed; an unknown
        ``kid`` or a failure waits for the cooldown since the last attempt."""
        if keys is not None and unknown_kid is None and not self._last_failed:
            return True
        return self._seconds_until_next_attempt() <= 0

    def _seconds_until_next_attempt(self) -> float:
        last = self._last_attempt_anywhere()
        if last is None:
            return 0.0
        return self.policy.cooldown - (self._clock() - last)

    def _last_attempt_anywhere(self) -> float | None:
        shared = self._backend_call("get", self._attempt_key)
        attempts = [t for t in (self._last_attempt, shared) if isinstance(t, (int, float))]
        return max(attempts) if attempts else None

    def _fetch_once_for_everyone(self) -> KeySet | None:
        """Fetch, unless another process holds the shared lock: then wait for its result."""
        owner = uuid.uuid4().hex
        lock_seconds = math.ceil(self.policy.fetch_timeout) + 1
        acquired = self._backend_call("add", self._lock_key, owner, timeout=lock_seconds)
        if acquired is False:
            outcome = self._wait_for_other_fetch(lock_seconds)
            if outcome is not _OWNER_VANISHED:
                return outcome
        try:
            return self._fetch_and_publish()
        finally:
            if acquired and self._backend_call("get", self._lock_key) == owner:
                self._backend_call("delete", self._lock_key)

    def _wait_for_other_fetch(self, seconds: float) -> Any:
        """The keys another process fetched; ``None`` when its fetch failed (then this
        process counts that as its own failed attempt); ``_OWNER_VANISHED`` when it
        neither finished nor released the lock in time."""
        before = self._keys.version if self._keys is not None else None
        for _ in range(math.ceil(seconds / POLL_INTERVAL)):
            self._sleep(POLL_INTERVAL)
            keys = self._adopt_shared()
            if keys is not None and keys.version != before:
                return keys
            if self._backend_call("get", self._lock_key) is None:
                keys = self._adopt_shared()  # it may have finished between the two reads
                if keys is not None and keys.version != before:
                    return keys
                self._last_attempt = self._clock()
                self._last_failed = True
                return None
        return _OWNER_VANISHED

    def _fetch_and_publish(self) -> KeySet | None:
        now = self._clock()
        self._last_attempt = now
        self._backend_call(
            "set", self._attempt_key, now, timeout=math.ceil(self.policy.cooldown)
        )
        self.fetch_count += 1
        try:
            document = self._fetch(self.uri, self.policy.fetch_timeout)
            keys = parse_jwk_set(document, version=now)
        except (FetchFailed, UnusableKeySet) as exc:
            self._last_failed = True
            logger.warning(
                "Flask-AuthFlow could not refresh the signing keys from %s: %s; "
                "keeping the last good keys, if any, and retrying after %ss.",
                self.uri, exc, self.policy.cooldown,
            )
            return None
        self._last_failed = False
        self._keys = keys
        entry = {"jwks": document, "fetched_at": now}
        self._backend_call("set", self._entry_key, entry, timeout=self._entry_lifetime())
        return keys

    def _adopt_shared(self) -> KeySet | None:
        """Take the shared entry when it is newer than ours; parse it once."""
        entry = self._backend_call("get", self._entry_key)
        if not isinstance(entry, dict) or not isinstance(entry.get("fetched_at"), (int, float)):
            return None
        fetched_at = float(entry["fetched_at"])
        if self._keys is not None and self._keys.version >= fetched_at:
            return self._keys
        try:
            keys = parse_jwk_set(entry.get("jwks"), version=fetched_at)
        except UnusableKeySet:
            return None
        self._keys = keys
        self._last_failed = False
        return keys

    def _entry_lifetime(self) -> int:
        # Outlive the TTL so every process can use stale keys while the provider is down.
        return math.ceil(self.policy.max_stale + self.policy.ttl)

    def _backend_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the shared backend; on any failure log now and then and carry on without it."""
        if self._backend is None:
            return None
        try:
            return getattr(self._backend, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - backends raise their own error types
            now = self._clock()
            if now - self._last_backend_warning >= BACKEND_WARNING_INTERVAL:
                self._last_backend_warning = now
                logger.warning(
                    "Flask-AuthFlow's shared key cache failed (%s); using this process's "
                    "copy and direct fetches.", type(exc).__name__,
                )
            return None
