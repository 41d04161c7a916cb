"""Authenticator: one request's bearer token from header to validated :class:`Token`.

Framework-free: the Flask layer hands it the ``Authorization`` header value and turns
what it raises into responses. Routing and validation are split because routing runs
for every request (its problems are only recorded) while validation runs only when a
protected view asks.

With the verified-token cache on (``AUTHFLOW_TOKEN_CACHE_SIZE`` > 0), routing looks the
token string up before parsing it: a token seen before carries its scheme in the cache
entry, so a repeated token is neither parsed nor verified again. Validation of a hit
still asks the scheme for its current keys (which performs any due refresh) and checks
the token's lifetime against the clock; see :mod:`flask_authflow.token_cache`.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable
from typing import NamedTuple

from .errors import AuthError, MissingToken, UnexpectedFailure
from .parsing import HeaderMemo, UnverifiedToken, bearer_token, parse_token
from .routing import Schemes, route_by_issuer
from .token import Token
from .token_cache import CachedToken, TokenCache
from .validation import Scheme, validate

logger = logging.getLogger("flask_authflow")


class RoutedToken(NamedTuple):
    """The routing step's outcome: a token and its scheme, or the error to answer with.

    For a token found in the cache, ``cached`` holds the entry and ``token`` is
    ``None``: it was not parsed again. Such outcomes are made once, when the token
    is cached, and handed to every request that presents it (immutable: a named tuple).
    """

    token: UnverifiedToken | None = None
    scheme: Scheme | None = None
    error: AuthError | None = None
    cached: CachedToken | None = None


class Authenticator:
    """Routes and validates bearer tokens for one app's schemes.

    :param token_cache_size: how many verified tokens to remember; 0 turns the cache off.
    """

    def __init__(
        self,
        schemes: Schemes,
        *,
        clock: Callable[[], float] = time.time,
        token_cache_size: int = 0,
    ) -> None:
        self.schemes = schemes
        self._clock = clock
        #: The verified tokens (as routing outcomes), or ``None`` when the cache is off.
        self.token_cache: TokenCache[RoutedToken] | None = (
            TokenCache(token_cache_size) if token_cache_size > 0 else None
        )
        # The key-set version each scheme last validated with: a change empties the
        # cache entries of the old version.
        self._key_versions: dict[str, float] = {}
        self._headers = HeaderMemo()

    def replace_schemes(self, schemes: Schemes) -> None:
        """Judge tokens by ``schemes`` from now on, forgetting every cached verdict
        (a cached token remembers the scheme, and so the keys, that verified it)."""
        self.schemes = schemes
        self._key_versions.clear()
        if self.token_cache is not None:
            self.token_cache.clear()

    def route(self, authorization: str | None) -> RoutedToken | None:
        """Parse the header and pick the scheme; ``None`` when there is no header."""
        if authorization is None:
            return None
        try:
            raw = authorization[7:]
            if not (authorization.startswith("Bearer ") and raw and " " not in raw and "\t" not in raw):
                # Not the usual spelling, which is read without the regex: with no white
                # space to trim or split on, bearer_token() would find this very token.
                raw = bearer_token(authorization)
            cache = self.token_cache
            if cache is not None:
                hit = cache.get(raw)
                if hit is not None:
                    return hit
            token = parse_token(raw, self._headers)
            return RoutedToken(token, route_by_issuer(token, self.schemes))
        except AuthError as error:
            return RoutedToken(error=error)
        except Exception:  # noqa: BLE001 - the one guard that turns surprises into a 401
            return RoutedToken(error=_unexpected("routing"))

    def authenticate(self, routed: RoutedToken | None) -> Token:
        """Validate a routed token, raising the :class:`AuthError` to answer with."""
        if routed is None:
            raise MissingToken()
        if routed.error is not None:
            raise routed.error
        try:
            cached = routed.cached
            if cached is not None:
                # A cache hit, the usual request, so written out here: one clock read,
                # and the scheme's keys without a refresh while they are fresh.
                now = self._clock()
                source = cached.scheme.keys
                keys = source.fresh_key_set(now)
                if keys is None:
                    # A refresh is due: key_set() performs it (or raises
                    # KeysUnavailable, exactly as validation would).
                    keys = source.key_set(cached.kid)
                # Still good while validation would pass again: the keys the signature
                # was checked with, and the lifetime_bounds() that validation checks.
                if keys.version == cached.key_version and cached.valid_from <= now < cached.valid_until:
                    return cached.token
                raw = cached.token.raw
                assert self.token_cache is not None
                self.token_cache.discard(raw, routed)
                return self._validate(parse_token(raw, self._headers), cached.scheme)
            assert routed.token is not None and routed.scheme is not None
            return self._validate(routed.token, routed.scheme)
        except AuthError:
            raise
        except Exception:  # noqa: BLE001 - the one guard that turns surprises into a 401
            # ``from None``: the original message might quote token data.
            raise _unexpected("validation") from None

    def _validate(self, token: UnverifiedToken, scheme: Scheme) -> Token:
        """Every check of ``scheme``; a token that passes them all is cached."""
        validated, key_set = validate(token, scheme, self._clock())
        cache = self.token_cache
        if cache is not None:
            version = key_set.version
            if self._key_versions.get(scheme.name, version) != version:
                name = scheme.name
                cache.discard_where(
                    lambda old: old.cached is not None
                    and old.cached.scheme.name == name
                    and old.cached.key_version != version
                )
            self._key_versions[scheme.name] = version
            if cache.admits(token.raw):
                entry = CachedToken.of(validated, scheme, token.kid, version)
                cache.put(token.raw, RoutedToken(scheme=scheme, cached=entry))
        return validated


def _unexpected(stage: str) -> UnexpectedFailure:
    # Log the exception's type and stack only: its message might quote the token.
    exc_type, _, tb = sys.exc_info()
    name = exc_type.__name__ if exc_type is not None else "unknown"
    stack = "".join(traceback.format_tb(tb))
    logger.error("Flask-AuthFlow: unexpected %s during token %s\n%s", name, stage, stack)
    return UnexpectedFailure()
