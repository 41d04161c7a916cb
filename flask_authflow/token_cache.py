"""TokenCache: tokens that passed every check, so that a repeated token skips validation.

Clients reuse one access token for many requests, and verifying its signature is the
most expensive step of a request. The cache remembers, per app, the tokens that passed
*every* check of their scheme; failures are never stored.

An entry is served only while it would still pass the checks that depend on time or
on keys:

- lifetime: every hit compares the clock with ``exp`` (and ``nbf``) using the scheme's
  clock skew, exactly as validation does, and an entry found expired is dropped;
- keys: an entry records the :class:`~flask_authflow.keys.KeySet` version it was
  verified with, and a hit whose scheme now has another version is a miss (the caller
  drops it and validates again). A key set changes version whenever it is fetched or
  the development keys change, so no entry outlives the key that signed it.

The cache is keyed by the whole token string. Within one app the token string
determines its scheme (routing reads the scheme from the token's own ``iss``), so the
key is in effect (token, scheme); the entry also holds the scheme, so a hit can skip
parsing and routing altogether.

:class:`TokenCache` is a bounded map, safe to share between request threads, that
evicts first in, first out. A hit writes nothing: it is one dictionary lookup, with no
lock and no recency to record, so the request a cache exists for costs least. Tokens of
one issuer share a lifetime, so insertion order is close to expiry order and FIFO
drops the entries with the least time left; a busy token that is evicted anyway is
verified once more and goes to the back.

A token enters the cache on its second use, not its first (:meth:`TokenCache.admits`):
a token presented only once would cost an entry, and the memory traffic of keeping
and later evicting it, for no hit. Measured, that admission rule takes about 5 µs off
a request with a new token; the price is one more verification for each token in
use, on its second request.

The cache stores whatever the caller wants
back on a hit (the authenticator stores its routing outcome, so that a hit allocates
nothing); each such value holds a :class:`CachedToken`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

from .token import Token
from .validation import Scheme, lifetime_bounds

V = TypeVar("V")


class CachedToken(NamedTuple):
    """A token that passed every check of ``scheme``, and what limits its reuse.

    Immutable (a named tuple: the cheapest immutable record to build, once per new token).
    """

    token: Token
    scheme: Scheme
    #: The token's ``kid``: what to ask the scheme's key source for on a hit.
    kid: str | None
    #: The version of the key set the signature was verified with.
    key_version: float
    #: The first and the last instant the token is valid, clock skew included.
    valid_from: float
    valid_until: float

    @classmethod
    def of(cls, token: Token, scheme: Scheme, kid: str | None, key_version: float) -> CachedToken:
        return cls(token, scheme, kid, key_version, *lifetime_bounds(token.claims, scheme.clock_skew))


class TokenCache(Generic[V]):
    """At most ``max_size`` entries keyed by token string; the longest held goes first.

    Lookups take no lock (a dictionary lookup is atomic); writers take one.
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("A TokenCache holds at least one token; use none to turn it off.")
        self.max_size = max_size
        # Insertion order is eviction order; OrderedDict drops its oldest entry in O(1).
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()
        #: ``get(raw)``: the entry for the token string ``raw``, or ``None``. The
        #: dictionary's own method, so a hit runs no Python code here. The caller must
        #: still check the entry's keys and lifetime before trusting it.
        self.get: Callable[[str], V | None] = self._entries.get

        # The doorkeeper's marks: the fingerprints of tokens verified once and not
        # cached, in two generations of at most max_size each (see admits()).
        self._marks: set[int] = set()
        self._older_marks: set[int] = set()

    def admits(self, raw: str) -> bool:
        """Whether the token ``raw``, which has just passed every check, is worth caching.

        Yes on its second use while its first is remembered; the first use only leaves
        a mark. A token presented once (a client that fetches a token per call) thus
        costs no cache entry and evicts nothing, and a token in use is cached from its
        second request on, for the price of one more verification. The marks are
        ``hash(raw)``, about ``2 * max_size`` of them at most (threads racing past a
        generation's size check may add one each): the oldest generation is dropped
        when the newer one is full. They decide only what is remembered, never
        whether a token is accepted, so a lost mark (two threads starting a generation
        at once) or a hash collision costs at most one verification more or less.
        """
        mark = hash(raw)
        if mark in self._marks or mark in self._older_marks:
            return True
        marks = self._marks
        if len(marks) >= self.max_size:
            self._older_marks, self._marks = marks, {mark}
        else:
            marks.add(mark)
        return False

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, raw: object) -> bool:
        return raw in self._entries

    def put(self, raw: str, entry: V) -> None:
        """Remember ``entry`` for ``raw`` at the back, evicting the oldest beyond the bound."""
        with self._lock:
            self._entries[raw] = entry
            self._entries.move_to_end(raw)  # a renewed entry starts over
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def discard(self, raw: str, entry: V) -> None:
        """Drop ``raw`` if it still maps to ``entry`` (another thread may have renewed it)."""
        with self._lock:
            if self._entries.get(raw) is entry:
                del self._entries[raw]

    def discard_where(self, stale: Callable[[V], bool]) -> int:
        """Drop every entry for which ``stale(entry)`` is true; returns how many went.

        Used when a scheme's key set changes, so that entries of a removed or reset
        key leave memory at once rather than when evicted.
        """
        with self._lock:
            gone = [raw for raw, entry in self._entries.items() if stale(entry)]
            for raw in gone:
                del self._entries[raw]
        return len(gone)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._marks, self._older_marks = set(), set()
