"""Building the two schemes from an app's settings.

``Auth0`` verifies asymmetric signatures with the tenant's JWK Set. ``UserJwts``
verifies HS256 with the keys of the local user-secrets store, and is built only in
the development environment: in production neither the scheme nor the store exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .config import Settings
from .jwks import CacheBackend, JwksCache, JwksPolicy
from .keys import KeySet, VerificationKey
from .routing import AUTH0, USER_JWTS, Schemes
from .user_secrets import SigningKeyWatcher, UserSecretsStore
from .validation import Scheme

DEVELOPMENT_ALGORITHM = "HS256"


class DevelopmentKeys:
    """The UserJwts scheme's ``KeySource``: HS256 keys from the user-secrets store.

    The watcher re-checks the secrets file at most about once a second, so a
    ``flask user-jwts key --reset`` is seen without a restart and without a file read
    per request. The :class:`KeySet` is rebuilt only when the keys change.
    """

    def __init__(self, watcher: SigningKeyWatcher) -> None:
        self._watcher = watcher
        # Its version is the watcher's version it was built from (none yet: -1).
        self._key_set = KeySet((), version=-1.0)

    def fresh_key_set(self, now: float) -> KeySet | None:
        watcher, key_set = self._watcher, self._key_set
        if watcher.check_due(now) or watcher.version != key_set.version:
            return None
        return key_set

    def key_set(self, kid: str | None) -> KeySet:
        keys, version = self._watcher.current()
        key_set = self._key_set
        if key_set.version != version:
            key_set = KeySet(
                tuple(VerificationKey(kid=key.id, key_type="oct", key=key.value) for key in keys),
                version=float(version),
            )
            self._key_set = key_set
        return key_set


def build_schemes(
    settings: Settings,
    backend: CacheBackend | None,
    *,
    clock: Callable[[], float] = time.time,
) -> Schemes:
    """The schemes an app with ``settings`` registers."""
    auth0 = None
    if settings.auth0_issuer is not None and settings.auth0_jwks_uri is not None:
        policy = JwksPolicy(
            ttl=settings.jwks_cache_ttl,
            cooldown=settings.jwks_refresh_cooldown,
            max_stale=settings.jwks_max_stale,
            fetch_timeout=settings.jwks_fetch_timeout,
        )
        auth0 = Scheme(
            name=AUTH0,
            issuer=settings.auth0_issuer,
            audiences=frozenset(settings.auth0_audiences),
            algorithms=frozenset(settings.auth0_algorithms),
            keys=JwksCache(settings.auth0_jwks_uri, backend, policy, clock=clock),
            clock_skew=settings.clock_skew,
            role_claims=settings.role_claims,
        )
    user_jwts = None
    if settings.is_development:
        store = UserSecretsStore(settings.user_secrets_dir, settings.user_secrets_id)
        user_jwts = Scheme(
            name=USER_JWTS,
            issuer=settings.user_jwts_issuer,
            audiences=frozenset(settings.user_jwts_audiences),
            algorithms=frozenset({DEVELOPMENT_ALGORITHM}),
            keys=DevelopmentKeys(
                SigningKeyWatcher(store, settings.user_jwts_issuer, clock=clock)
            ),
            clock_skew=settings.clock_skew,
            role_claims=settings.role_claims,
        )
    return Schemes(development_issuer=settings.user_jwts_issuer, auth0=auth0, user_jwts=user_jwts)
