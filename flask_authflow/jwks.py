"""JwksCache: an identity provider's signing keys, fetched once and shared.

Keys live at two levels. Each process keeps the parsed :class:`KeySet` in memory and
serves every request from it. The raw document, with its fetch time, also lives in a
shared cache backend (flask-caching's, e.g. Redis), so that a deployment of many
processes fetches once per TTL. A process reads the shared entry only when its own
copy is stale, or for an unknown ``kid``.

Refresh rules: a stale copy (older than ``ttl``) is refreshed; an unknown ``kid``
causes a refresh only when the last attempt is older than ``cooldown``; after a failed
attempt the next waits for ``cooldown``, and the last good keys stay in use until they
are ``max_stale`` old. The last attempt's time is shared, so the cooldown holds for the
whole deployment.

One fetch per deployment: the process that fetches holds a short lock in the backend
(an atomic ``add`` with an expiry). A process without keys, or looking for an unknown
``kid``, waits a bounded time for the holder's result; a process with stale but usable
keys goes on with them. A lock whose holder died is taken over when it runs out.

When the backend fails, the failure is logged now and then, the backend is left alone
for :data:`BACKEND_RETRY_INTERVAL` seconds, and the process goes on with its own copy
and direct fetches.
"""

from __future__ import annotations

import enum
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
#: After a backend failure, the backend is not called again for this many seconds, so a
#: backend that is down or slow costs at most one timeout per interval and process.
BACKEND_RETRY_INTERVAL = 10.0
#: How often a process takes its turn at the lock when holders keep vanishing.
LOCK_ROUNDS = 2


class _Signal(enum.Enum):
    UNAVAILABLE = "the backend failed or is being left alone"
    DONE = "the other process's fetch ended; its outcome is adopted"
    VANISHED = "the lock holder neither finished nor released in time"


class CacheBackend(Protocol):
    """The part of a cachelib / flask-caching backend this module uses."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def add(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def delete(self, key: str) -> Any: ...


@dataclass(frozen=True)
class JwksPolicy:
    """How long keys are fresh (``ttl``), the least time between attempts after a
    failure or for an unknown ``kid`` (``cooldown``), how long stale keys may serve
    while refreshing fails (``max_stale``), and the fetch's time budget."""

    ttl: float = 600.0
    cooldown: float = 30.0
    max_stale: float = 86400.0
    fetch_timeout: float = 5.0


class JwksCache:
    """The signing keys published at ``uri``; implements the ``KeySource`` protocol.

    :param backend: a cachelib / flask-caching backend shared by the processes of a
        deployment, or ``None`` for this process alone.
    :param clock: seconds since the epoch (shared entries carry such times, so every
        process of a deployment must use the same clock).
    :param sleep: how waiting for another process's fetch passes time.
    :param fetch: ``fetch(uri, timeout)`` returning the JWK Set document; by default
        :func:`~flask_authflow.jwks_fetch.fetch_jwk_set`.
    """

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
        #: The latest finished fetch attempt this process knows of, its own or another's.
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self._backend_quiet_until = -math.inf
        self._backend_failing = False
        self._last_backend_warning = -math.inf
        self._entry_key = f"authflow:jwks:{uri}"
        self._attempt_key = f"authflow:jwks-attempt:{uri}"
        self._lock_key = f"authflow:jwks-lock:{uri}"
        # A fetch may take about twice its timeout (connecting, then reading); the lock
        # outlives it so that a slow fetch is not duplicated.
        self._lock_seconds = math.ceil(2 * policy.fetch_timeout) + 1
        #: Number of HTTP fetches this process made (for tests and metrics).
        self.fetch_count = 0

    # -- the KeySource protocol ---------------------------------------------------

    def key_set(self, kid: str | None) -> KeySet:
        """The keys to verify a token with ``kid``, refreshing them as the rules say.

        :raises KeysUnavailable: when there are no keys, or only keys older than
            ``max_stale``; ``retry_after`` is the time until the next attempt.
        """
        fresh = self.fresh_key_set(self._clock())
        if fresh is not None and (kid is None or fresh.knows(kid)):
            # The common case, decided with one clock read. Fresh keys are never too
            # old: configuration holds max_stale >= ttl.
            return fresh
        keys = fresh if fresh is not None else self._refresh(seen=self._keys, unknown_kid=None)
        if kid is not None and keys is not None and not keys.knows(kid):
            keys = self._refresh(seen=keys, unknown_kid=kid)
        if keys is None or self._too_old(keys):
            raise KeysUnavailable(retry_after=self._seconds_until_next_attempt())
        return keys

    def fresh_key_set(self, now: float) -> KeySet | None:
        """The keys in memory when they are fresh at ``now``, else ``None``; never
        fetches. A cached token asks this first: no refresh is due while it answers."""
        keys = self._keys
        if keys is not None and now - keys.version < self.policy.ttl:
            return keys
        return None

    # -- refreshing ---------------------------------------------------------------

    def _refresh(self, seen: KeySet | None, unknown_kid: str | None) -> KeySet | None:
        # A process without usable keys, or looking for a kid, has to wait for the
        # result; a stale copy keeps serving while another thread refreshes it.
        urgent = seen is None or unknown_kid is not None or self._too_old(seen)
        if not self._attempt_allowed(seen, unknown_kid, self._last_attempt):
            return seen  # decided without touching the backend: floods stay cheap
        if not self._lock.acquire(blocking=urgent):
            return seen
        try:
            keys = self._keys
            if keys is not None and keys is not seen and self._good_for(keys, unknown_kid):
                return keys  # another thread refreshed while this one waited
            if not self._attempt_allowed(keys, unknown_kid, self._last_attempt):
                return keys
            self._adopt_shared()
            keys = self._keys
            if keys is not None and self._good_for(keys, unknown_kid):
                return keys
            return self._fetch_or_wait(keys, unknown_kid, urgent)
        finally:
            self._lock.release()

    def _fetch_or_wait(
        self, keys: KeySet | None, unknown_kid: str | None, urgent: bool
    ) -> KeySet | None:
        last = self._last_attempt_anywhere()
        if not self._attempt_allowed(keys, unknown_kid, last):
            if not self._fetch_in_progress():
                # That attempt has ended, and no process may try again before its
                # cooldown is over: look no more until then. It may have ended between
                # the two reads above, so take its result if there is one.
                self._note_attempt(last)
                self._adopt_shared()
                return self._keys
            if not urgent:
                return keys
            if self._wait_for_other_fetch() is _Signal.DONE:
                return self._keys
        owner = uuid.uuid4().hex
        for _ in range(LOCK_ROUNDS):
            taken = self._take_lock(owner)
            if taken is not False:  # ours, or the backend cannot tell: fetch
                return self._fetch_and_publish(owner if taken else None)
            if not urgent:
                return keys
            if self._wait_for_other_fetch() is _Signal.DONE:
                return self._keys
        return self._fetch_and_publish(None)

    def _attempt_allowed(
        self, keys: KeySet | None, unknown_kid: str | None, last: float | None
    ) -> bool:
        """Whether the rules allow a fetch now, given the last attempt's time: a stale
        copy refreshes at once unless an attempt failed since it was fetched; an
        unknown ``kid``, a cold start or a failure waits for the cooldown."""
        if last is None or self._clock() - last >= self.policy.cooldown:
            return True
        return keys is not None and unknown_kid is None and last <= keys.version

    def _good_for(self, keys: KeySet, unknown_kid: str | None) -> bool:
        if unknown_kid is not None:
            return keys.knows(unknown_kid)
        return self._age(keys) < self.policy.ttl

    def _age(self, keys: KeySet) -> float:
        return self._clock() - keys.version

    def _too_old(self, keys: KeySet) -> bool:
        return self._age(keys) > self.policy.max_stale

    def _note_attempt(self, when: float | None) -> None:
        if when is not None and (self._last_attempt is None or when > self._last_attempt):
            self._last_attempt = when

    def _seconds_until_next_attempt(self) -> float:
        if self._last_attempt is None:
            return 0.0
        return self.policy.cooldown - (self._clock() - self._last_attempt)

    def _last_attempt_anywhere(self) -> float | None:
        shared = self._backend_call("get", self._attempt_key)
        attempts = [t for t in (self._last_attempt, shared) if t is not None and _is_time(t)]
        return max(attempts) if attempts else None

    # -- fetching -----------------------------------------------------------------

    def _fetch_and_publish(self, lock_owner: str | None) -> KeySet | None:
        """Fetch, keep and share the keys; on failure keep the last good ones."""
        now = self._clock()
        try:
            self._backend_call(
                "set", self._attempt_key, now, timeout=math.ceil(self.policy.cooldown)
            )
            self.fetch_count += 1
            document: Any = None
            try:
                document = self._fetch(self.uri, self.policy.fetch_timeout)
                keys = parse_jwk_set(document, version=now)
            except (FetchFailed, UnusableKeySet) as exc:
                logger.warning(
                    "Flask-AuthFlow could not refresh the signing keys from %s: %s; "
                    "keeping the last good keys, if any, and retrying after %ss.",
                    self.uri,
                    _cause(exc, document),
                    self.policy.cooldown,
                )
                return self._keys
            self._keys = keys
            entry = {"jwks": document, "fetched_at": now}
            self._backend_call("set", self._entry_key, entry, timeout=self._entry_lifetime())
            return keys
        finally:
            # Noted once it has ended: until then, this process's other threads wait
            # for its result instead of being turned away by the cooldown.
            self._note_attempt(now)
            if lock_owner is not None:
                self._release_lock(lock_owner)

    def _adopt_shared(self) -> None:
        """Take the shared entry when it is newer than ours; parse it once."""
        entry = self._backend_call("get", self._entry_key)
        if not isinstance(entry, dict) or not _is_time(entry.get("fetched_at")):
            return
        fetched_at = float(entry["fetched_at"])
        if self._keys is not None and self._keys.version >= fetched_at:
            return
        try:
            self._keys = parse_jwk_set(entry.get("jwks"), version=fetched_at)
        except UnusableKeySet:
            return
        self._note_attempt(fetched_at)

    def _entry_lifetime(self) -> int:
        # Outlive the TTL so every process can use stale keys while the provider is down.
        return math.ceil(self.policy.max_stale + self.policy.ttl)

    # -- the shared lock ----------------------------------------------------------

    def _take_lock(self, owner: str) -> bool | None:
        """``True`` when this process now holds the lock, ``False`` when another
        does, ``None`` when the backend cannot tell."""
        now = self._clock()
        holder = {"owner": owner, "until": now + self._lock_seconds}
        added = self._backend_call("add", self._lock_key, holder, timeout=self._lock_seconds)
        if added is _Signal.UNAVAILABLE:
            return None
        if added:
            return True
        current = self._backend_call("get", self._lock_key)
        if current is _Signal.UNAVAILABLE:
            return None
        if current is not None and self._lock_alive(current, now):
            return False
        if current is not None:
            # Abandoned: some backends (cachelib's Redis) set the expiry in a second
            # step, which a crash can skip. Two takers may both delete and add here;
            # the worst outcome is one extra fetch.
            self._backend_call("delete", self._lock_key)
        added = self._backend_call("add", self._lock_key, holder, timeout=self._lock_seconds)
        return None if added is _Signal.UNAVAILABLE else bool(added)

    def _lock_alive(self, holder: Any, now: float) -> bool:
        if isinstance(holder, dict) and _is_time(holder.get("until")):
            # Leave room for clocks that differ between hosts.
            return bool(now < holder["until"] + self._lock_seconds)
        return True  # not ours to judge: the backend's expiry ends it

    def _fetch_in_progress(self) -> bool:
        holder = self._backend_call("get", self._lock_key)
        if holder is None or holder is _Signal.UNAVAILABLE:
            return False
        return self._lock_alive(holder, self._clock())

    def _release_lock(self, owner: str) -> None:
        holder = self._backend_call("get", self._lock_key)
        if isinstance(holder, dict) and holder.get("owner") == owner:
            self._backend_call("delete", self._lock_key)

    def _wait_for_other_fetch(self) -> _Signal:
        """Wait for the lock holder's result. ``DONE``: its keys are adopted, or its
        failure counts as this process's last attempt. ``VANISHED``: it neither
        finished nor released in time, or the backend failed meanwhile."""
        before = self._keys.version if self._keys is not None else None
        for _ in range(math.ceil(self._lock_seconds / POLL_INTERVAL)):
            self._sleep(POLL_INTERVAL)
            if self._adopted_newer_than(before):
                return _Signal.DONE
            holder = self._backend_call("get", self._lock_key)
            if holder is _Signal.UNAVAILABLE:
                return _Signal.VANISHED
            if holder is None:
                if self._adopted_newer_than(before):  # it finished between the two reads
                    return _Signal.DONE
                self._note_attempt(self._last_attempt_anywhere() or self._clock())
                return _Signal.DONE
            if not self._lock_alive(holder, self._clock()):
                return _Signal.VANISHED
        return _Signal.VANISHED

    def _adopted_newer_than(self, version: float | None) -> bool:
        self._adopt_shared()
        return self._keys is not None and (version is None or self._keys.version > version)

    # -- the backend --------------------------------------------------------------

    def _backend_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the shared backend. When it fails, log now and then, leave it alone for
        a while and answer ``UNAVAILABLE``; ``None`` stands for a missing entry."""
        if self._backend is None:
            return _Signal.UNAVAILABLE
        now = self._clock()
        if now < self._backend_quiet_until:
            return _Signal.UNAVAILABLE
        try:
            result = getattr(self._backend, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - backends raise their own error types
            self._backend_quiet_until = now + BACKEND_RETRY_INTERVAL
            self._backend_failing = True
            if now - self._last_backend_warning >= BACKEND_WARNING_INTERVAL:
                self._last_backend_warning = now
                logger.warning(
                    "Flask-AuthFlow's shared key cache failed (%s: %.200s); using this "
                    "process's copy and direct fetches, and trying the cache again in %ss.",
                    type(exc).__name__,
                    exc,
                    BACKEND_RETRY_INTERVAL,
                )
            return _Signal.UNAVAILABLE
        if self._backend_failing:
            self._backend_failing = False
            logger.info("Flask-AuthFlow's shared key cache answers again.")
        return result


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _cause(exc: Exception, document: Any) -> str:
    """The failure's cause for the log; for an unusable JWK Set, the key types it held."""
    cause = str(exc)
    if isinstance(exc, UnusableKeySet) and isinstance(document, dict):
        jwks = document.get("keys")
        if isinstance(jwks, list):
            types = sorted({str(jwk.get("kty"))[:16] for jwk in jwks if isinstance(jwk, dict)})
            if types:
                cause += f" (key types: {', '.join(types)})"
    return cause
