"""Verification keys: parsing a JWK Set once into key objects, and choosing keys for a token.

Signatures are checked by PyJWT's algorithm objects (which call ``cryptography``);
nothing here implements cryptography itself. Symmetric (``oct``) keys are never taken
from a JWK Set: an HMAC secret published next to public keys would let anyone sign.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

logger = logging.getLogger("flask_authflow")

MIN_RSA_BITS = 2048

#: Every JWS algorithm we can verify, by name. "none" is deliberately absent.
ALGORITHMS: Mapping[str, Algorithm] = {
    name: algorithm
    for name, algorithm in get_default_algorithms().items()
    if name in {
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "EdDSA",
    }
}

_EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def key_type_for(algorithm: str) -> str:
    """The JWK ``kty`` a key must have to verify ``algorithm``."""
    if algorithm.startswith(("RS", "PS")):
        return "RSA"
    if algorithm.startswith("ES"):
        return "EC"
    if algorithm == "EdDSA":
        return "OKP"
    return "oct"


@dataclass(frozen=True)
class VerificationKey:
    """One key that may verify signatures, with what limits its use."""

    kid: str | None
    key_type: str
    key: Any = field(repr=False)
    #: The JWK's own ``alg``; when set, the key verifies that algorithm only.
    algorithm: str | None = None

    def fits(self, algorithm: str) -> bool:
        if self.algorithm is not None and self.algorithm != algorithm:
            return False
        if self.key_type != key_type_for(algorithm):
            return False
        curve = _EC_CURVES.get(algorithm)
        return curve is None or isinstance(self.key.curve, curve)

    def verifies(self, algorithm: str, signing_input: bytes, signature: bytes) -> bool:
        return ALGORITHMS[algorithm].verify(signing_input, self.key, signature)


@dataclass(frozen=True)
class KeySet:
    """An immutable set of keys, parsed once per version.

    ``version`` identifies the content (a fetch time for a JWK Set, a counter for the
    development keys), so caches can tell when a key may have gone.
    """

    keys: tuple[VerificationKey, ...]
    version: float = 0.0
    by_kid: Mapping[str, tuple[VerificationKey, ...]] = field(init=False, repr=False)
    #: The answers of :meth:`candidates`, worked out once per key set: by algorithm,
    #: then by ``kid`` (``None`` for a token without one).
    _fitting: Mapping[str, Mapping[str | None, tuple[VerificationKey, ...]]] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        by_kid: dict[str, list[VerificationKey]] = {}
        for key in self.keys:
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
        object.__setattr__(self, "by_kid", {kid: tuple(keys) for kid, keys in by_kid.items()})
        pools: dict[str | None, tuple[VerificationKey, ...]] = {None: self.keys}
        pools.update(self.by_kid)
        fitting = {
            algorithm: {
                kid: tuple(key for key in pool if key.fits(algorithm)) for kid, pool in pools.items()
            }
            for algorithm in ALGORITHMS
        }
        object.__setattr__(self, "_fitting", fitting)

    def knows(self, kid: str) -> bool:
        return kid in self.by_kid

    def candidates(self, kid: str | None, algorithm: str) -> tuple[VerificationKey, ...]:
        """Keys to try: those with this ``kid``, or every key when the token has none."""
        by_kid = self._fitting.get(algorithm)
        return () if by_kid is None else by_kid.get(kid, ())


class UnusableKeySet(ValueError):
    """A JWK Set document that holds no key we could verify with."""


def parse_jwk_set(document: Any, *, version: float) -> KeySet:
    """Parse a JWK Set (RFC 7517 §5) into a :class:`KeySet` of public signing keys.

    Keys that are not for signatures, private, symmetric, of an unknown type, or RSA
    keys shorter than 2048 bits are skipped. Raises :class:`UnusableKeySet` when
    nothing usable remains.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise UnusableKeySet("the document is not a JWK Set (no 'keys' array)")
    keys = []
    skipped = 0
    for jwk in document["keys"]:
        key = _parse_public_jwk(jwk)
        if key is None:
            skipped += 1
        else:
            keys.append(key)
    if skipped:
        logger.info("Flask-AuthFlow skipped %d unusable key(s) of the JWK Set.", skipped)
    if not keys:
        raise UnusableKeySet("the JWK Set holds no usable signing key")
    return KeySet(tuple(keys), version=version)


def _parse_public_jwk(jwk: Any) -> VerificationKey | None:
    if not isinstance(jwk, dict):
        return None
    kty, kid, alg = jwk.get("kty"), jwk.get("kid"), jwk.get("alg")
    if kid is not None and not isinstance(kid, str):
        return None
    if alg is not None and (not isinstance(alg, str) or alg not in ALGORITHMS):
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    if "d" in jwk or kty not in ("RSA", "EC", "OKP"):
        return None
    if alg is not None and key_type_for(alg) != kty:
        return None
    family = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}[kty]
    try:
        key = ALGORITHMS[family].from_jwk(jwk)
    except (InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(
        key,
        (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey),
    ):
        return None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return None
    return VerificationKey(kid=kid, key_type=kty, key=key, algorithm=alg)
