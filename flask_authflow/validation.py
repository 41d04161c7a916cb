"""The single validation pipeline shared by every scheme.

Order, first failure wins: algorithm accepted → issuer → signing key found (the only
step that may fetch keys) → signature → ``exp`` present → not expired → ``nbf`` →
audience. Well-formedness was checked when the token was parsed. The issuer is
checked before any key work, so a foreign token never causes a key fetch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import (
    ExpiredToken,
    InvalidAudience,
    InvalidIssuer,
    InvalidSignature,
    MissingExpiration,
    SigningKeyNotFound,
    TokenNotYetValid,
)
from .keys import KeySet
from .parsing import UnverifiedToken
from .token import Token


class KeySource(Protocol):
    """Where a scheme's verification keys come from."""

    def key_set(self, kid: str | None) -> KeySet:
        """The current keys; may refresh them for an unknown ``kid``.

        Raises :class:`~flask_authflow.errors.KeysUnavailable` when there are none.
        """

    def fresh_key_set(self, now: float) -> KeySet | None:
        """The current keys if no refresh or re-read is due at ``now``, else ``None``.

        Must be cheap and must not fetch, read files or raise: a cached token asks it
        on every request and falls back to :meth:`key_set` on ``None``.
        """


@dataclass(frozen=True)
class Scheme:
    """What one authentication scheme accepts, and where its keys come from."""

    name: str
    issuer: str
    audiences: frozenset[str]
    algorithms: frozenset[str]
    keys: KeySource = field(repr=False)
    clock_skew: float = 60.0
    role_claims: tuple[str, ...] = ()


def validate(token: UnverifiedToken, scheme: Scheme, now: float) -> tuple[Token, KeySet]:
    """Check ``token`` against ``scheme`` at time ``now`` (seconds since the epoch).

    Returns the token and the key set its signature was verified with (the cache of
    verified tokens records that set's version).
    """
    algorithm = token.algorithm
    if algorithm not in scheme.algorithms:
        raise SigningKeyNotFound()
    if token.issuer != scheme.issuer:
        raise InvalidIssuer()
    key_set = scheme.keys.key_set(token.kid)
    verify_signature(token, key_set)
    payload = token.payload
    check_lifetime(payload, now, scheme.clock_skew)
    if not _audience_matches(payload.get("aud"), scheme.audiences):
        raise InvalidAudience()
    # The payload was parsed for this token alone: the Token takes it over uncopied.
    return Token._own(token.raw, scheme.name, payload, scheme.role_claims), key_set


def verify_signature(token: UnverifiedToken, key_set: KeySet) -> None:
    candidates = key_set.candidates(token.kid, token.algorithm)
    if not candidates:
        raise SigningKeyNotFound()
    for key in candidates:
        if key.verifies(token.algorithm, token.signing_input, token.signature):
            return
    # With a kid we found the key and its signature failed; without one, no key fits.
    raise InvalidSignature() if token.kid is not None else SigningKeyNotFound()


def check_lifetime(payload: Mapping[str, Any], now: float, clock_skew: float) -> None:
    """``exp`` must be present and not past; ``nbf``, when present, must be reached."""
    valid_from, valid_until = lifetime_bounds(payload, clock_skew)
    if now >= valid_until:
        raise ExpiredToken()
    if now < valid_from:
        raise TokenNotYetValid()


def lifetime_bounds(payload: Mapping[str, Any], clock_skew: float) -> tuple[float, float]:
    """The instants a token is valid: ``valid_from <= now < valid_until``, clock skew
    included on both sides. The one rule for validation and for cached tokens.

    :raises MissingExpiration: without ``exp``.
    """
    expires = payload.get("exp")
    if expires is None:
        raise MissingExpiration()
    not_before = payload.get("nbf")
    return (
        -math.inf if not_before is None else not_before - clock_skew,
        expires + clock_skew,
    )


def _audience_matches(audience: str | list[str] | None, accepted: frozenset[str]) -> bool:
    if isinstance(audience, str):
        return audience in accepted
    return audience is not None and not accepted.isdisjoint(audience)
