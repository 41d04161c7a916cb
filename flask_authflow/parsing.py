"""Reading a bearer token without trusting it: the ``Authorization`` header and the JWS parts.

The result, :class:`UnverifiedToken`, is decoded once per request and serves both the
routing step (which only looks at ``iss``) and validation (which checks everything).
Anything that is not a well-formed compact JWS with JSON-object header and payload is
:class:`~flask_authflow.errors.MalformedToken`, raised before any key work.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from . import strict_json
from .errors import MalformedToken

#: Longest token accepted, checked before any decoding. Auth0 access tokens with
#: many permissions stay well below this.
MAX_TOKEN_LENGTH = 16 * 1024

_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([^ ]+)")
#: Three base64url segments: the one regex checks both the split and the alphabet.
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_B64URL_VALUE = {
    char: value
    for value, char in enumerate(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
}
#: By a segment's length modulo 4, the low bits of its last character that carry no
#: data. Canonical base64url leaves them zero (RFC 4648 §3.5); set, they would let one
#: token be spelt several ways, and a signature still verify.
_UNUSED_BITS = {2: 0b1111, 3: 0b11}
_TIME_CLAIMS = ("exp", "nbf", "iat")
_TIME_BOUND = 2**63
_STRING_OR_LIST_CLAIMS = ("aud", "scope", "role", "roles")


@dataclass(frozen=True)
class UnverifiedToken:
    """A compact JWS split and decoded, with nothing about it verified yet."""

    raw: str = field(repr=False)
    header: dict[str, Any] = field(repr=False)
    payload: dict[str, Any] = field(repr=False)
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    @property
    def algorithm(self) -> str:
        return self.header["alg"]  # type: ignore[no-any-return]

    @property
    def kid(self) -> str | None:
        return self.header.get("kid")

    @property
    def issuer(self) -> str | None:
        return self.payload.get("iss")


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` value (RFC 6750 §2.1).

    The scheme name matches in any case, one or more spaces may follow it, and white
    space around the whole value is ignored; anything else is malformed.
    """
    match = _BEARER.fullmatch(authorization.strip(" \t"))
    if match is None:
        raise MalformedToken()
    return match.group(1)


def parse_token(raw: str) -> UnverifiedToken:
    """Split and decode a compact JWS, enforcing the well-formedness rules."""
    if len(raw) > MAX_TOKEN_LENGTH or not raw.isascii():
        raise MalformedToken()
    match = _COMPACT_JWS.fullmatch(raw)
    if match is None:
        raise MalformedToken()
    header_part, payload_part, signature_part = match.groups()
    header = _json_object(_b64decode(header_part))
    payload = _json_object(_b64decode(payload_part))
    _check_header(header)
    _check_payload(payload)
    return UnverifiedToken(
        raw=raw,
        header=header,
        payload=payload,
        signing_input=raw[: match.end(2)].encode("ascii"),
        signature=_b64decode(signature_part),
    )


def _b64decode(segment: str) -> bytes:
    # The segment is known to hold base64url characters only, so this is
    # base64.urlsafe_b64decode without its wrappers (it runs three times per token),
    # made strict: only the canonical spelling of the bytes is accepted.
    remainder = len(segment) % 4
    if remainder == 1 or (remainder and _B64URL_VALUE[segment[-1]] & _UNUSED_BITS[remainder]):
        raise MalformedToken()
    data = segment.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(segment) % 4)
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken() from exc


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = strict_json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedToken() from exc
    if not isinstance(value, dict):
        raise MalformedToken()
    return value


def _check_header(header: dict[str, Any]) -> None:
    if not isinstance(header.get("alg"), str):
        raise MalformedToken()
    if "kid" in header and not isinstance(header["kid"], str):
        raise MalformedToken()
    # We implement no critical extensions (RFC 7515 §4.1.11), "b64" included.
    if "crit" in header or header.get("b64", True) is not True:
        raise MalformedToken()


def _check_payload(payload: dict[str, Any]) -> None:
    for name in _TIME_CLAIMS:
        if name in payload and not _is_finite_number(payload[name]):
            raise MalformedToken()
    for name in ("iss", "sub"):
        if name in payload and not isinstance(payload[name], str):
            raise MalformedToken()
    for name in _STRING_OR_LIST_CLAIMS:
        if name in payload and not is_string_or_strings(payload[name]):
            raise MalformedToken()
    if "permissions" in payload and not _is_strings(payload["permissions"]):
        raise MalformedToken()


def _is_finite_number(value: Any) -> bool:
    # The bound rejects NaN and infinities, and keeps arithmetic on the value in float
    # range (a 400-digit integer is not).
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < _TIME_BOUND


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def is_string_or_strings(value: Any) -> bool:
    """True for a string or a list of strings: the shapes of ``aud``, ``scope`` and roles."""
    return isinstance(value, str) or _is_strings(value)
