"""Reading a bearer token without trusting it: the ``Authorization`` header and the JWS parts.

The result, :class:`UnverifiedToken`, is decoded once per request and serves both the
routing step (which only looks at ``iss``) and validation (which checks everything).
Anything that is not a well-formed compact JWS with JSON-object header and payload is
:class:`~flask_authflow.errors.MalformedToken`, raised before any key work.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from . import strict_json
from .errors import MalformedToken

#: Longest token accepted, checked before any decoding. Auth0 access tokens with
#: many permissions stay well below this.
MAX_TOKEN_LENGTH = 16 * 1024

_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([^ ]+)")
_BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: One pass over a token, in C, both checks its alphabet and readies it for the
#: standard base64 decoder: "-" and "_" become "+" and "/", base64url characters and
#: the dots stay, and every other byte ("+", "/" and "=" included) becomes "!",
#: which no valid token contains afterwards.
_TO_STANDARD_OR_BANG = bytes(
    {ord("-"): ord("+"), ord("_"): ord("/")}.get(byte, byte)
    if byte in _BASE64URL or byte == ord(".")
    else ord("!")
    for byte in range(256)
)
#: By a segment's length modulo 4: the characters that may end it, and the padding
#: the decoder wants. The last character's low bits beyond the data must be zero
#: (canonical base64url, RFC 4648 §3.5); set, they would let one token be spelt
#: several ways and a signature still verify. A remainder of 1 is never valid.
_STANDARD_BASE64 = _BASE64URL.translate(bytes.maketrans(b"-_", b"+/"))
_CANONICAL_ENDINGS = {
    2: frozenset(char for value, char in enumerate(_STANDARD_BASE64) if value & 0b1111 == 0),
    3: frozenset(char for value, char in enumerate(_STANDARD_BASE64) if value & 0b11 == 0),
}
_PADDING = {0: b"", 2: b"==", 3: b"="}
_TIME_CLAIMS = ("exp", "nbf", "iat")
_TIME_BOUND = 2**63
_STRING_OR_LIST_CLAIMS = ("aud", "scope", "role", "roles")


class UnverifiedToken(NamedTuple):
    """A compact JWS split and decoded, with nothing about it verified yet.

    ``algorithm`` and ``kid`` are all that validation needs of the header, and
    ``issuer`` is read from the payload: each once, when parsing has checked its type.
    """

    raw: str
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    algorithm: str
    kid: str | None
    issuer: str | None

    def __repr__(self) -> str:  # never the token or its claims
        return f"UnverifiedToken(algorithm={self.algorithm!r}, kid={self.kid!r})"


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` value (RFC 6750 §2.1).

    The scheme name matches in any case, one or more spaces may follow it, and white
    space around the whole value is ignored; anything else is malformed.
    """
    match = _BEARER.fullmatch(authorization.strip(" \t"))
    if match is None:
        raise MalformedToken()
    return match.group(1)


class HeaderMemo:
    """The JWS headers already read, so that each distinct header is decoded once.

    An issuer signs every token with one of a few headers (``alg``, ``kid``, ``typ``),
    so the header segment repeats across tokens while the payload does not. A header's
    outcome depends on its text alone, and only headers that passed every check are
    remembered. Bounded: when full it starts over, so a client sending many distinct
    headers costs at worst the decoding that a memo-less reader always does.
    """

    def __init__(self, max_size: int = 32) -> None:
        self.max_size = max_size
        self._known: dict[bytes, tuple[str, str | None]] = {}
        #: ``get(segment)``: the header's ``(alg, kid)``, or ``None`` if not yet read.
        self.get: Callable[[bytes], tuple[str, str | None] | None] = self._known.get

    def __len__(self) -> int:
        return len(self._known)

    def remember(self, segment: bytes, fields: tuple[str, str | None]) -> None:
        known = self._known
        if len(known) >= self.max_size:
            known.clear()  # a dict's clear and insert are atomic: threads may share it
        known[segment] = fields


def parse_token(raw: str, headers: HeaderMemo | None = None) -> UnverifiedToken:
    """Split and decode a compact JWS, enforcing the well-formedness rules.

    ``headers``, when given, remembers the headers read before (see :class:`HeaderMemo`).
    """
    if len(raw) > MAX_TOKEN_LENGTH or not raw.isascii():
        raise MalformedToken()
    encoded = raw.encode("ascii")
    data = encoded.translate(_TO_STANDARD_OR_BANG)
    if b"!" in data:
        raise MalformedToken()
    segments = data.split(b".")
    if len(segments) != 3:
        raise MalformedToken()
    header_part, payload_part, signature_part = segments
    fields = None if headers is None else headers.get(header_part)
    if fields is None:
        fields = _read_header(header_part)
        if headers is not None:
            headers.remember(header_part, fields)
    payload = _json_object(_b64decode(payload_part))
    _check_payload(payload)
    return UnverifiedToken(
        raw,
        payload,
        encoded[: len(header_part) + 1 + len(payload_part)],
        _b64decode(signature_part),
        fields[0],
        fields[1],
        payload.get("iss"),
    )


def _read_header(segment: bytes) -> tuple[str, str | None]:
    """The header's ``alg`` and ``kid``, once it has passed every check."""
    header = _json_object(_b64decode(segment))
    algorithm = header.get("alg")
    kid = header.get("kid")
    if (
        not isinstance(algorithm, str)
        or ("kid" in header and not isinstance(kid, str))
        # We implement no critical extensions (RFC 7515 §4.1.11), "b64" included.
        or "crit" in header
        or header.get("b64", True) is not True
    ):
        raise MalformedToken()
    return algorithm, kid


def _b64decode(segment: bytes) -> bytes:
    # The segment is known to hold standard base64 characters only (translated from
    # base64url), so this is base64.urlsafe_b64decode without its wrappers (it runs
    # three times per token), made strict: only the canonical spelling is accepted.
    remainder = len(segment) % 4
    if remainder and (remainder == 1 or segment[-1] not in _CANONICAL_ENDINGS[remainder]):
        raise MalformedToken()
    try:
        return binascii.a2b_base64(segment + _PADDING[remainder])
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
