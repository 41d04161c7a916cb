"""The attack corpus: known ways to fool a JWT validator, one named case each.

Every case goes through a real app and a real JWKS server on 127.0.0.1 and must be
answered 401 with the documented description: never 200, never 500. Tokens are
crafted by hand (base64url + JSON + a signature made with ``cryptography`` or
``hmac``) because PyJWT refuses to produce most of them. Where a case is signed, it is
signed with the trusted key whenever that makes the attack stronger: the token is then
refused for the defect under test, not for its signature.

A second real HTTP server plays the attacker's key host; after every case it must have
received no request, and the trusted server only requests for the configured JWKS URI.

:data:`ATTACKS` and :class:`Forge` are also used by ``test_secrets_hygiene.py``.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from jwks_server import JwksServer
from support import AUDIENCE, Clock, SigningKey, bearer

from flask_authflow import parsing

MALFORMED = "The token is malformed"
NO_KEY = "The signature key was not found"
BAD_SIGNATURE = "The signature is invalid"
BAD_ISSUER = "The issuer is invalid"
BAD_AUDIENCE = "The audience is invalid"
EXPIRED = "The token is expired"
NOT_YET_VALID = "The token is not valid yet"
NO_EXPIRATION = "The token has no expiration"
#: Every ``error_description`` of the error contract (DESIGN.md).
DESCRIPTIONS = frozenset(
    {
        MALFORMED,
        NO_KEY,
        BAD_SIGNATURE,
        BAD_ISSUER,
        BAD_AUDIENCE,
        EXPIRED,
        NOT_YET_VALID,
        NO_EXPIRATION,
    }
)

DEV_ISSUER = "dotnet-user-jwts"
DEV_AUDIENCE = "http://localhost:5000"
DEV_SECRETS_ID = "attack-corpus"
JWKS_PATH = "/.well-known/jwks.json"
ROLE_CLAIM = "https://api.example.test/roles"


# -- crafting tokens by hand ---------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(part: Any) -> str:
    """A dict becomes base64url JSON; bytes are encoded as they are."""
    return b64url(part if isinstance(part, bytes) else json.dumps(part).encode())


_RSA_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def signature(signing_input: bytes, key: rsa.RSAPrivateKey | bytes, algorithm: str) -> bytes:
    """Sign as JWS ``algorithm`` does: HMAC with a byte secret, RSA PKCS#1 v1.5 or PSS."""
    if isinstance(key, bytes):
        return hmac.new(key, signing_input, _HMAC_HASHES[algorithm]).digest()
    digest = _RSA_HASHES[algorithm[2:]]()
    if algorithm.startswith("PS"):
        pad: padding.AsymmetricPadding = padding.PSS(
            mgf=padding.MGF1(digest), salt_length=digest.digest_size
        )
    else:
        pad = padding.PKCS1v15()
    return key.sign(signing_input, pad, digest)


def raw_json(document: Mapping[str, Any], **literals: str) -> bytes:
    """``document`` as JSON with members replaced by raw JSON text (``NaN``, ``1e400``...)
    that ``json.dumps`` would not write."""
    placeholders = {name: f"@@{name}@@" for name in literals}
    text = json.dumps({**document, **placeholders})
    for name, literal in literals.items():
        text = text.replace(json.dumps(placeholders[name]), literal)
    return text.encode()


def with_member(document: Mapping[str, Any], member: bytes) -> bytes:
    """``document`` as JSON with one more member written as raw bytes."""
    return json.dumps(document).encode()[:-1] + b", " + member + b"}"


@functools.cache
def self_signed_certificate(key: rsa.RSAPrivateKey) -> bytes:
    """A DER certificate for ``key``, as an attacker would put in ``x5c``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.test")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=36500))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Forge:
    """What an attacker can see or make, and helpers to craft tokens with it."""

    issuer: str
    now: int
    #: Served by the trusted JWKS endpoint.
    trusted: SigningKey
    #: Not served by the trusted endpoint; served by the attacker's own server.
    attacker: SigningKey
    attacker_url: str
    trusted_url: str
    dev_key: bytes = field(repr=False)
    dev_kid: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """A payload the app accepts; keyword arguments replace claims (``None`` drops)."""
        payload = {
            "iss": self.issuer,
            "sub": "auth0|attacker",
            "aud": AUDIENCE,
            "iat": self.now,
            "exp": self.now + 3600,
            "scope": "read:messages write:messages",
            "roles": ["admin"],
        }
        payload.update(overrides)
        return {name: value for name, value in payload.items() if value is not None}

    def dev_claims(self, **overrides: Any) -> dict[str, Any]:
        return self.claims(iss=DEV_ISSUER, aud=DEV_AUDIENCE, **overrides)

    def header(self, algorithm: str = "RS256", kid: Any = True, **extra: Any) -> dict[str, Any]:
        """A JOSE header; ``kid=True`` names the trusted key, ``None`` leaves it out."""
        header: dict[str, Any] = {"alg": algorithm, "typ": "JWT"}
        if kid is True:
            header["kid"] = self.trusted.kid
        elif kid is not None:
            header["kid"] = kid
        header.update(extra)
        return header

    def jws(
        self,
        header: Mapping[str, Any] | bytes | None = None,
        payload: Mapping[str, Any] | bytes | None = None,
        *,
        key: SigningKey | bytes | None = None,
        algorithm: str | None = None,
        unsigned: bool = False,
    ) -> str:
        """A compact JWS. By default an RS256 header naming the trusted key, the claims the
        app accepts and a signature by the trusted key; ``algorithm`` is the one actually
        used to sign (default: the header's ``alg``), ``unsigned`` gives an empty signature."""
        header = self.header() if header is None else header
        payload = self.claims() if payload is None else payload
        signing_input = f"{segment(header)}.{segment(payload)}"
        if unsigned:
            return signing_input + "."
        if algorithm is None:
            algorithm = header["alg"] if isinstance(header, Mapping) else "RS256"
        secret = key if isinstance(key, bytes) else (key or self.trusted).private
        return f"{signing_input}.{b64url(signature(signing_input.encode(), secret, algorithm))}"

    def token(self, **claims: Any) -> str:
        """The trusted key's RS256 token with ``claims`` changed."""
        return self.jws(payload=self.claims(**claims))

    def public_key_secrets(self) -> dict[str, bytes]:
        """The trusted public key in every form it is published or commonly stored in,
        each a candidate HMAC secret for the algorithm-confusion attack."""
        public = self.trusted.private.public_key()
        spki = (serialization.PublicFormat.SubjectPublicKeyInfo,)
        pkcs1 = (serialization.PublicFormat.PKCS1,)
        pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
        modulus = public.public_numbers().n
        return {
            "pem": public.public_bytes(pem, *spki),
            "pem-pkcs1": public.public_bytes(pem, *pkcs1),
            "der": public.public_bytes(der, *spki),
            "der-pkcs1": public.public_bytes(der, *pkcs1),
            "jwk-modulus": modulus.to_bytes((modulus.bit_length() + 7) // 8, "big"),
            "jwk-modulus-b64url": self.trusted.jwk["n"].encode(),
            "jwk-json": json.dumps(self.trusted.jwk).encode(),
        }


# -- the corpus ------------------------------------------------------------------------

Request = Mapping[str, Any]


@dataclass(frozen=True)
class Attack:
    """One attack: how to build its request, and the description it must be answered with."""

    name: str
    description: str
    build: Callable[[Forge], str | Request] = field(repr=False)
    env: str = "production"
    path: str = "/private"
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Whether validation legitimately gets as far as the signing keys. Cases refused
    #: earlier (malformed, wrong issuer, algorithm not accepted) must cause no JWKS
    #: request at all, not even a cold-start one.
    reaches_keys: bool = False

    def request(self, forge: Forge) -> Request:
        built = self.build(forge)
        return {"headers": bearer(built)} if isinstance(built, str) else built


def authorization(*values: str) -> Request:
    """Send ``values`` as (possibly repeated) ``Authorization`` headers."""
    return {"headers": [("Authorization", value) for value in values]}


def raw_authorization(value: str) -> Request:
    """Put ``value`` into the WSGI environ as it is: for characters a client library
    refuses in headers (line breaks, NUL) but a raw socket can still deliver."""
    return {"environ_overrides": {"HTTP_AUTHORIZATION": value}}


def _alg_none() -> Iterator[Attack]:
    for alg in ("none", "None", "NONE", "nOnE"):
        yield Attack(
            f"alg-{alg}-empty-signature",
            NO_KEY,
            lambda f, alg=alg: f.jws(f.header(alg, kid=None), unsigned=True),
        )
    yield Attack(
        "alg-none-naming-the-trusted-kid", NO_KEY, lambda f: f.jws(f.header("none"), unsigned=True)
    )
    yield Attack(
        "alg-none-keeping-a-valid-rs256-signature",
        NO_KEY,
        lambda f: f.jws(f.header("none"), algorithm="RS256"),
    )
    yield Attack(
        "alg-none-with-the-development-issuer-in-development",
        NO_KEY,
        lambda f: f.jws(f.header("none", kid=None), f.dev_claims(), unsigned=True),
        env="development",
    )
    yield Attack(
        "rs256-empty-signature-naming-the-trusted-kid",
        BAD_SIGNATURE,
        lambda f: f.jws(unsigned=True),
        reaches_keys=True,
    )
    yield Attack(
        "rs256-empty-signature-without-kid",
        NO_KEY,
        lambda f: f.jws(f.header(kid=None), unsigned=True),
        reaches_keys=True,
    )
    yield Attack(
        "rs256-signature-of-zero-bytes",
        BAD_SIGNATURE,
        lambda f: f.jws(unsigned=True) + b64url(bytes(256)),
        reaches_keys=True,
    )


def _public_key_as_hmac_secret() -> Iterator[Attack]:
    forms = (
        "pem",
        "pem-pkcs1",
        "der",
        "der-pkcs1",
        "jwk-modulus",
        "jwk-modulus-b64url",
        "jwk-json",
    )
    for alg in ("HS256", "HS384", "HS512"):
        for form in forms:
            yield Attack(
                f"{alg.lower()}-signed-with-the-public-key-{form}",
                NO_KEY,
                lambda f, alg=alg, form=form: f.jws(
                    f.header(alg), key=f.public_key_secrets()[form]
                ),
            )
    yield Attack(
        "hs256-signed-with-the-public-key-pem-without-kid",
        NO_KEY,
        lambda f: f.jws(f.header("HS256", kid=None), key=f.public_key_secrets()["pem"]),
    )
    # The development scheme does accept HS256, but only with the store's keys.
    yield Attack(
        "hs256-development-issuer-signed-with-the-public-key-pem-in-development",
        NO_KEY,
        lambda f: f.jws(
            f.header("HS256", kid=None), f.dev_claims(), key=f.public_key_secrets()["pem"]
        ),
        env="development",
        reaches_keys=True,
    )
    yield Attack(
        "hs256-development-issuer-naming-the-development-kid-signed-with-the-public-key",
        BAD_SIGNATURE,
        lambda f: f.jws(
            f.header("HS256", kid=f.dev_kid), f.dev_claims(), key=f.public_key_secrets()["der"]
        ),
        env="development",
        reaches_keys=True,
    )


def _development_issuer() -> Iterator[Attack]:
    yield Attack(
        "rs256-development-issuer-signed-by-the-trusted-key-in-production",
        BAD_ISSUER,
        lambda f: f.jws(payload=f.dev_claims()),
    )
    yield Attack(
        "rs256-development-issuer-signed-by-the-trusted-key-in-development",
        NO_KEY,
        lambda f: f.jws(payload=f.dev_claims()),
        env="development",
    )
    yield Attack(
        "rs256-development-issuer-naming-the-development-kid-in-development",
        NO_KEY,
        lambda f: f.jws(f.header(kid=f.dev_kid), f.dev_claims()),
        env="development",
    )
    yield Attack(
        "hs256-signed-with-the-development-key-under-the-trusted-issuer-in-development",
        NO_KEY,
        lambda f: f.jws(f.header("HS256", kid=f.dev_kid), f.claims(), key=f.dev_key),
        env="development",
    )


def _algorithms() -> Iterator[Attack]:
    # Signed for real where the algorithm exists, so only the algorithm check can refuse.
    for alg in ("RS384", "RS512", "PS256", "PS512"):
        yield Attack(f"alg-{alg}-not-configured", NO_KEY, lambda f, alg=alg: f.jws(f.header(alg)))
    for alg in ("ES256", "EdDSA", "XYZ", "", "rs256", "RS256 ", "RSA-OAEP", "dir", "HS1"):
        yield Attack(
            f"alg-{alg.strip() or 'empty'}{'-with-trailing-space' if alg.endswith(' ') else ''}",
            NO_KEY,
            lambda f, alg=alg: f.jws(f.header(alg), algorithm="RS256"),
        )
    yield Attack(
        "alg-es256-accepted-but-kid-names-an-rsa-key",
        NO_KEY,
        lambda f: f.jws(f.header("ES256"), unsigned=True) + b64url(bytes(64)),
        config={"AUTH0_ALGORITHMS": ["RS256", "ES256"]},
        reaches_keys=True,
    )
    yield Attack(
        "alg-ps256-accepted-but-the-jwk-is-pinned-to-rs256",
        NO_KEY,
        lambda f: f.jws(f.header("PS256")),
        config={"AUTH0_ALGORITHMS": ["RS256", "PS256"]},
        reaches_keys=True,
    )
    for name, value in (
        ("number", 256),
        ("null", None),
        ("list", ["RS256"]),
        ("object", {"RS256": True}),
    ):
        yield Attack(
            f"alg-as-{name}",
            MALFORMED,
            lambda f, value=value: f.jws({"alg": value, "kid": f.trusted.kid}, algorithm="RS256"),
        )
    yield Attack(
        "alg-missing", MALFORMED, lambda f: f.jws({"kid": f.trusted.kid}, algorithm="RS256")
    )
    yield Attack(
        "alg-given-twice-none-first",
        MALFORMED,
        lambda f: f.jws(b'{"alg":"none","alg":"RS256","kid":"key-0"}'),
    )
    yield Attack(
        "alg-given-twice-through-an-escaped-name",
        MALFORMED,
        lambda f: f.jws(b'{"alg":"RS256","\\u0061lg":"none","kid":"key-0"}'),
    )


def _keys_in_the_header() -> Iterator[Attack]:
    def attacker_signed(f: Forge, kid: Any, **extra: Any) -> str:
        kid = f.attacker.kid if kid is True else kid
        return f.jws(f.header(kid=kid, **extra), key=f.attacker)

    for kid_name, kid in (("its-kid", True), ("no-kid", None)):
        yield Attack(
            f"jwk-header-with-the-attacker-key-{kid_name}",
            NO_KEY,
            lambda f, kid=kid: attacker_signed(f, kid, jwk=f.attacker.jwk),
            reaches_keys=True,
        )
        yield Attack(
            f"jku-header-pointing-at-the-attacker-server-{kid_name}",
            NO_KEY,
            lambda f, kid=kid: attacker_signed(f, kid, jku=f.attacker_url + JWKS_PATH),
            reaches_keys=True,
        )
        yield Attack(
            f"x5u-header-pointing-at-the-attacker-server-{kid_name}",
            NO_KEY,
            lambda f, kid=kid: attacker_signed(f, kid, x5u=f.attacker_url + "/cert.pem"),
            reaches_keys=True,
        )
        yield Attack(
            f"x5c-header-with-a-self-signed-certificate-{kid_name}",
            NO_KEY,
            lambda f, kid=kid: attacker_signed(
                f,
                kid,
                x5c=[base64.b64encode(self_signed_certificate(f.attacker.private)).decode()],
            ),
            reaches_keys=True,
        )
    yield Attack(
        "jwk-header-with-the-attacker-key-naming-the-trusted-kid",
        BAD_SIGNATURE,
        lambda f: attacker_signed(f, f.trusted.kid, jwk={**f.attacker.jwk, "kid": f.trusted.kid}),
        reaches_keys=True,
    )
    yield Attack(
        "jku-header-on-the-trusted-host-at-another-path",
        NO_KEY,
        lambda f: attacker_signed(f, True, jku=f.trusted_url + "/attacker/jwks.json"),
        reaches_keys=True,
    )
    yield Attack(
        "kid-that-is-the-attacker-url",
        NO_KEY,
        lambda f: attacker_signed(f, f.attacker_url + JWKS_PATH),
        reaches_keys=True,
    )
    yield Attack(
        "x5c-header-naming-the-trusted-kid",
        BAD_SIGNATURE,
        lambda f: attacker_signed(
            f,
            f.trusted.kid,
            x5c=[base64.b64encode(self_signed_certificate(f.attacker.private)).decode()],
        ),
        reaches_keys=True,
    )


def _kids() -> Iterator[Attack]:
    strings = {
        "path-traversal": "../../../../../../etc/passwd",
        "path-traversal-encoded": "..%2f..%2f..%2fetc%2fpasswd",
        "absolute-path": "/dev/zero",
        "sql-injection": "' OR '1'='1' --",
        "sql-injection-after-a-real-kid": "key-0' UNION SELECT 'secret' --",
        "shell-injection": "key-0; cat /etc/passwd",
        "very-long": "k" * 8000,
        "nul-byte": "key-0\u0000",
        "line-break": "key-0\r\nX-Injected: 1",
        "empty": "",
    }
    for name, kid in strings.items():
        yield Attack(
            f"kid-{name}",
            NO_KEY,
            lambda f, kid=kid: f.jws(f.header(kid=kid), key=f.attacker),
            reaches_keys=True,
        )
    for name, value in (
        ("number", 0),
        ("null", None),
        ("boolean", True),
        ("list", ["key-0"]),
        ("object", {"kid": "key-0"}),
    ):
        yield Attack(
            f"kid-as-{name}",
            MALFORMED,
            lambda f, value=value: f.jws({"alg": "RS256", "kid": value}),
        )


def _critical_headers() -> Iterator[Attack]:
    cases: dict[str, dict[str, Any]] = {
        "crit-with-an-unknown-extension": {
            "crit": ["urn:example:unknown"],
            "urn:example:unknown": 1,
        },
        "crit-naming-a-registered-claim": {"crit": ["exp"], "exp": 1},
        "crit-empty": {"crit": []},
        "crit-not-a-list": {"crit": "urn:example:unknown"},
        "b64-false-with-crit": {"b64": False, "crit": ["b64"]},
        "b64-false-without-crit": {"b64": False},
        "b64-as-string": {"b64": "false"},
    }
    for name, extra in cases.items():
        yield Attack(name, MALFORMED, lambda f, extra=extra: f.jws(f.header(**extra)))


def _malformed(cases: Mapping[str, Callable[[Forge], str | Request]]) -> Iterator[Attack]:
    for name, build in cases.items():
        yield Attack(name, MALFORMED, build)


def _jwe(header: Mapping[str, Any], *parts: bytes) -> str:
    return ".".join([segment(header), *(b64url(part) for part in parts)])


def _structure() -> Iterator[Attack]:
    jwe = {"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "key-0"}
    yield from _malformed(
        {
            "jwe-five-segments": lambda f: _jwe(jwe, b"k" * 256, b"i" * 12, b"c" * 64, b"t" * 16),
            # "zip": "DEF" is how a decompression bomb announces itself: nothing may inflate it.
            "jwe-five-segments-compressed": lambda f: _jwe(
                {**jwe, "zip": "DEF"}, b"", b"i" * 12, b"\x00" * 1024, b"t" * 16
            ),
            "jwe-dir-with-empty-key-segment": lambda f: _jwe(
                {"alg": "dir", "enc": "A128GCM"}, b"", b"i" * 12, b"c", b"t" * 16
            ),
            "four-segments": lambda f: f.jws() + ".e30",
            "two-segments": lambda f: f.jws().rsplit(".", 1)[0],
            "one-segment": lambda f: segment(f.claims()),
            "jws-json-serialization": lambda f: json.dumps(
                {"payload": segment(f.claims()), "signatures": [{"signature": "e30"}]}
            ),
            "jws-json-serialization-in-base64url": lambda f: segment(
                {"payload": segment(f.claims()), "signatures": [{"signature": "e30"}]}
            ),
            "empty-header-segment": lambda f: "." + f.jws().split(".", 1)[1],
            "empty-payload-segment": lambda f: f.jws(payload=b""),
        }
    )


def _sizes() -> Iterator[Attack]:
    limit = parsing.MAX_TOKEN_LENGTH
    yield Attack(
        "token-over-the-size-limit-signed-by-the-trusted-key",
        MALFORMED,
        lambda f: f.token(padding="x" * limit),
    )
    yield Attack(
        "jose-header-over-the-size-limit",
        MALFORMED,
        lambda f: f.jws(f.header(padding="x" * limit)),
    )
    yield Attack(
        "authorization-header-of-a-megabyte",
        MALFORMED,
        lambda f: "A" * 1_000_000,
    )
    yield Attack(
        "megabyte-of-segments",
        MALFORMED,
        lambda f: ".".join(["e30"] * 250_000),
    )


def _nesting() -> Iterator[Attack]:
    # As deep as fits under the size limit: far beyond any recursion limit.
    yield Attack(
        "payload-of-nested-arrays", MALFORMED, lambda f: f.jws(payload=b"[" * 6000 + b"]" * 6000)
    )
    yield Attack(
        "claim-of-nested-objects",
        MALFORMED,
        lambda f: f.jws(payload=b'{"iss":"x","a":' + b'{"a":' * 2000 + b"1" + b"}" * 2001),
    )
    yield Attack(
        "header-of-nested-arrays",
        MALFORMED,
        lambda f: f.jws(b'{"alg":"RS256","x":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    )


def _replace_segment(token: str, index: int, new: str) -> str:
    parts = token.split(".")
    parts[index] = new
    return ".".join(parts)


B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def with_unused_bits_set(segment: str) -> str:
    """``segment`` spelt another way that decodes to the same bytes: its last character
    also carries bits that canonical base64url leaves zero (RFC 4648 §3.5)."""
    assert len(segment) % 4 in (2, 3), "this length has no unused bits"
    last = B64URL_ALPHABET.index(segment[-1])
    return segment[:-1] + B64URL_ALPHABET[last | 1]


def _respelt_header(f: Forge) -> str:
    """The trusted key's token whose header segment has unused bits set; signed over
    the respelt segment, so only the encoding is wrong."""
    for pad in ("", "x", "xx"):
        header = segment(f.header(pad=pad))
        if len(header) % 4 in (2, 3):
            signing_input = f"{with_unused_bits_set(header)}.{segment(f.claims())}"
            signed = signature(signing_input.encode(), f.trusted.private, "RS256")
            return f"{signing_input}.{b64url(signed)}"
    raise AssertionError("no header length with unused bits")


def _encodings() -> Iterator[Attack]:
    def with_raw_string(raw: bytes) -> Callable[[Forge], str]:
        return lambda f: f.jws(payload=with_member(f.claims(), b'"x":"' + raw + b'"'))

    yield from _malformed(
        {
            "base64-with-padding": lambda f: _replace_segment(
                f.jws(), 0, segment(f.header()) + "=="
            ),
            "base64-standard-alphabet": lambda f: _replace_segment(
                f.jws(), 2, base64.b64encode(b"\xfb\xff" * 128).decode().rstrip("=")
            ),
            "base64-impossible-length": lambda f: _replace_segment(
                f.jws(), 1, segment(f.claims()) + "AAAAA"
            ),
            "base64-percent-encoded": lambda f: _replace_segment(f.jws(), 0, "%7B%7D"),
            # One token, several spellings: a deny list or cache keyed by the token
            # string would see strangers. RS256 signatures leave 4 bits unused.
            "base64-unused-bits-set-in-the-signature": lambda f: _replace_segment(
                f.jws(), 2, with_unused_bits_set(f.jws().split(".")[2])
            ),
            "base64-unused-bits-set-in-the-header": _respelt_header,
            "header-invalid-utf8": lambda f: f.jws(b'{"alg":"RS256","kid":"key-0","x":"\xff"}'),
            "payload-invalid-utf8-byte": with_raw_string(b"\xff"),
            "payload-truncated-utf8-sequence": with_raw_string(b"\xc3("),
            "payload-overlong-utf8": with_raw_string(b"\xc0\xaf"),
            "payload-utf16": lambda f: f.jws(payload=json.dumps(f.claims()).encode("utf-16")),
            "payload-with-byte-order-mark": lambda f: f.jws(
                payload=b"\xef\xbb\xbf" + json.dumps(f.claims()).encode()
            ),
            "payload-with-trailing-data": lambda f: f.jws(
                payload=json.dumps(f.claims()).encode() + b"{}"
            ),
            "payload-with-a-duplicate-iss": lambda f: f.jws(
                payload=with_member(f.claims(), b'"iss": "https://evil.example/"')
            ),
            "payload-with-a-5000-digit-number": lambda f: f.jws(
                payload=raw_json(f.claims(), x="9" * 5000)
            ),
        }
    )
    for name, document in (
        ("list", b"[]"),
        ("string", b'"x"'),
        ("null", b"null"),
        ("number", b"1"),
    ):
        yield from _malformed(
            {
                f"payload-that-is-a-{name}": lambda f, d=document: f.jws(payload=d),
                f"header-that-is-a-{name}": lambda f, d=document: f.jws(d, algorithm="RS256"),
            }
        )


def _claim_types() -> Iterator[Attack]:
    typed: dict[str, dict[str, Any]] = {
        "exp-as-string": {"exp": "9999999999"},
        "exp-as-boolean-true": {"exp": True},
        "exp-as-boolean-false": {"exp": False},
        "exp-as-null": {"exp": None},
        "exp-as-list": {"exp": [9999999999]},
        "exp-as-object": {"exp": {"$gt": 0}},
        "exp-huge-integer": {"exp": 10**30},
        "exp-two-to-the-63": {"exp": 2**63},
        "exp-huge-float": {"exp": 1e300},
        "nbf-as-string": {"nbf": "0"},
        "iat-as-string": {"iat": "now"},
        "aud-as-object": {"aud": {AUDIENCE: True}},
        "aud-as-number": {"aud": 1},
        "aud-as-null": {"aud": None},
        "aud-list-with-a-number": {"aud": [AUDIENCE, 1]},
        "aud-list-with-null": {"aud": [AUDIENCE, None]},
        "aud-list-of-lists": {"aud": [[AUDIENCE]]},
        "iss-as-list": {"iss": lambda f: [f.issuer]},
        "iss-as-object": {"iss": lambda f: {"value": f.issuer}},
        "iss-as-null": {"iss": None},
        "iss-as-number": {"iss": 1},
        "sub-as-object": {"sub": {"id": 1}},
    }
    yield from _claims_of_the_wrong_type(typed)
    for name, literal in (
        ("exp-nan", "NaN"),
        ("exp-infinity", "Infinity"),
        ("exp-minus-infinity", "-Infinity"),
        ("exp-overflowing-to-infinity", "1e400"),
        ("nbf-nan", "NaN"),
    ):
        claim = name.split("-", 1)[0]
        yield Attack(
            name,
            MALFORMED,
            lambda f, claim=claim, literal=literal: f.jws(
                payload=raw_json(f.claims(), **{claim: literal})
            ),
        )


def _claims_of_the_wrong_type(
    cases: Mapping[str, Mapping[str, Any]], path: str = "/private"
) -> Iterator[Attack]:
    """Tokens signed by the trusted key with claims set as given: ``None`` is JSON null,
    a callable is given the forge. Correctly signed, yet malformed."""

    def build(claims: Mapping[str, Any]) -> Callable[[Forge], str]:
        def token(f: Forge) -> str:
            values = {name: v(f) if callable(v) else v for name, v in claims.items()}
            return f.jws(payload={**f.claims(), **values})

        return token

    for name, claims in cases.items():
        yield Attack(name, MALFORMED, build(claims), path=path)


def _issuers_and_audiences() -> Iterator[Attack]:
    issuers: dict[str, Callable[[Forge], str]] = {
        "iss-that-starts-with-the-trusted-one": lambda f: f.issuer + "evil.example/",
        "iss-that-contains-the-trusted-one": lambda f: "https://evil.example/?next=" + f.issuer,
        "iss-that-is-a-prefix-of-the-trusted-one": lambda f: f.issuer.rstrip("/"),
        "iss-in-upper-case": lambda f: f.issuer.upper(),
        "iss-with-trailing-space": lambda f: f.issuer + " ",
        "iss-with-nul-byte": lambda f: f.issuer + "\u0000",
        "iss-development-lookalike-in-production": lambda f: DEV_ISSUER.upper(),
        "iss-missing": lambda f: "",
    }
    for name, make in issuers.items():
        yield Attack(name, BAD_ISSUER, lambda f, make=make: f.token(iss=make(f) or None))
    audiences: dict[str, Any] = {
        "aud-empty-list": [],
        "aud-empty-string": "",
        "aud-that-starts-with-the-api": AUDIENCE + ".evil.example",
        "aud-that-is-a-prefix-of-the-api": AUDIENCE[:-1],
        "aud-in-upper-case": AUDIENCE.upper(),
        "aud-list-of-other-apis": ["https://other.example.test", AUDIENCE + "/"],
    }
    for name, audience in audiences.items():
        yield Attack(
            name,
            BAD_AUDIENCE,
            lambda f, audience=audience: f.token(aud=audience),
            reaches_keys=True,
        )
    yield Attack(
        "iss-right-but-signed-by-the-attacker-naming-the-trusted-kid",
        BAD_SIGNATURE,
        lambda f: f.jws(key=f.attacker),
        reaches_keys=True,
    )


def _scopes_and_roles() -> Iterator[Attack]:
    scoped: dict[str, dict[str, Any]] = {
        "scope-as-number": {"scope": 5},
        "scope-as-boolean": {"scope": True},
        "scope-as-object": {"scope": {"read:messages": True, "write:messages": True}},
        "scope-list-with-a-number": {"scope": ["read:messages", "write:messages", 1]},
        "scope-list-of-lists": {"scope": [["read:messages", "write:messages"]]},
        "permissions-as-string": {"permissions": "read:messages write:messages"},
        "permissions-as-object": {"permissions": {"read:messages": True}},
        "permissions-list-with-null": {"permissions": ["read:messages", "write:messages", None]},
    }
    yield from _claims_of_the_wrong_type(scoped, path="/scoped")
    roles: dict[str, dict[str, Any]] = {
        "roles-as-object": {"roles": {"admin": True}},
        "roles-as-number": {"roles": 1},
        "role-list-with-a-number": {"role": ["admin", 7]},
        "roles-list-of-lists": {"roles": [["admin"]]},
    }
    yield from _claims_of_the_wrong_type(roles, path="/roles")
    yield Attack(
        "configured-role-claim-as-object",
        MALFORMED,
        lambda f: f.token(roles=None, **{ROLE_CLAIM: {"admin": True}}),
        path="/roles",
        config={"ROLE_CLAIMS": [ROLE_CLAIM]},
        reaches_keys=True,
    )


def _authorization_headers() -> Iterator[Attack]:
    values: dict[str, Callable[[Forge], str]] = {
        "empty": lambda f: "",
        "scheme-without-token": lambda f: "Bearer",
        "scheme-and-spaces-without-token": lambda f: "Bearer    ",
        "lowercase-scheme-without-token": lambda f: "bearer",
        "token-without-scheme": lambda f: f.jws(),
        "basic-scheme": lambda f: "Basic " + f.jws(),
        "token-scheme": lambda f: "Token " + f.jws(),
        "jwt-scheme": lambda f: "JWT " + f.jws(),
        "dpop-scheme": lambda f: "DPoP " + f.jws(),
        "scheme-with-colon": lambda f: "Bearer: " + f.jws(),
        "scheme-with-equals": lambda f: "Bearer=" + f.jws(),
        "scheme-with-comma": lambda f: "Bearer," + f.jws(),
        "scheme-glued-to-token": lambda f: "Bearer" + f.jws(),
        "scheme-split-by-a-space": lambda f: "Bear er " + f.jws(),
        "scheme-twice": lambda f: "Bearer Bearer " + f.jws(),
        "scheme-and-token-separated-by-a-tab": lambda f: "Bearer\t" + f.jws(),
        "two-tokens": lambda f: f"Bearer {f.jws()} {f.jws()}",
        "token-and-a-trailing-word": lambda f: f"Bearer {f.jws()} extra",
        "token-and-a-trailing-comma": lambda f: f"Bearer {f.jws()},",
        "two-bearer-credentials-in-one-header": lambda f: f"Bearer {f.jws()}, Bearer {f.jws()}",
        "space-inside-the-token": lambda f: "Bearer " + f.jws().replace(".", ". ", 1),
        "non-ascii-letter-after-the-token": lambda f: f"Bearer {f.jws()}é",
        "non-ascii-letter-inside-the-token": lambda f: "Bearer " + f.jws().replace(".", ".é", 1),
        "no-break-space-after-the-scheme": lambda f: "Bearer\u00a0" + f.jws(),
        "fullwidth-scheme": lambda f: "Ｂｅａｒｅｒ " + f.jws(),
        "zero-width-space-in-the-token": lambda f: "Bearer " + f.jws().replace(".", "\u200b.", 1),
        "utf8-mojibake-in-the-token": lambda f: "Bearer " + f.jws() + "Ã©",
    }
    for name, make in values.items():
        yield Attack(
            f"authorization-{name}", MALFORMED, lambda f, make=make: authorization(make(f))
        )
    yield Attack(
        "authorization-twice-with-the-same-valid-token",
        MALFORMED,
        lambda f: authorization(f"Bearer {f.jws()}", f"Bearer {f.jws()}"),
    )
    yield Attack(
        "authorization-twice-garbage-first",
        MALFORMED,
        lambda f: authorization("Bearer garbage", f"Bearer {f.jws()}"),
    )
    yield Attack(
        "authorization-twice-valid-first",
        MALFORMED,
        lambda f: authorization(f"Bearer {f.jws()}", "Basic dXNlcjpwYXNz"),
    )
    for name, separator in (
        ("line-feed", "\n"),
        ("carriage-return", "\r"),
        ("nul", "\x00"),
        ("vertical-tab", "\x0b"),
    ):
        yield Attack(
            f"authorization-scheme-and-token-separated-by-{name}",
            MALFORMED,
            lambda f, separator=separator: raw_authorization("Bearer" + separator + f.jws()),
        )
        yield Attack(
            f"authorization-token-followed-by-{name}",
            MALFORMED,
            lambda f, separator=separator: raw_authorization(
                f"Bearer {f.jws()}{separator}X-Injected: 1"
            ),
        )
    # The scheme name matches in any case (RFC 6750, fixed in DESIGN.md): a lowercase
    # scheme must not change how the token itself is judged.
    yield Attack(
        "authorization-lowercase-scheme-with-a-forged-token",
        BAD_SIGNATURE,
        lambda f: authorization("bearer " + f.jws(key=f.attacker)),
        reaches_keys=True,
    )


ATTACKS: tuple[Attack, ...] = tuple(
    attack
    for group in (
        _alg_none,
        _public_key_as_hmac_secret,
        _development_issuer,
        _algorithms,
        _keys_in_the_header,
        _kids,
        _critical_headers,
        _structure,
        _sizes,
        _nesting,
        _encodings,
        _claim_types,
        _issuers_and_audiences,
        _scopes_and_roles,
        _authorization_headers,
    )
    for attack in group()
)


# -- fixtures ------------------------------------------------------------------------


def write_development_key(root: Any, secrets_id: str, key: bytes, kid: str) -> Any:
    """A user-secrets store in .NET's layout holding one development key."""
    folder = root / secrets_id
    folder.mkdir(parents=True)
    entry = {
        "Id": kid,
        "Issuer": DEV_ISSUER,
        "Value": base64.b64encode(key).decode(),
        "Length": len(key),
    }
    path = folder / "secrets.json"
    path.write_text(json.dumps({"Authentication:Schemes:Bearer:SigningKeys": [entry]}))
    return path


@pytest.fixture(scope="module")
def attacker_host(signing_keys: list[SigningKey]) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.serve_keys(signing_keys[2].jwk)
        yield server


@pytest.fixture
def attacker_server(attacker_host: JwksServer) -> JwksServer:
    """A second real server, serving the attacker's key at every path; started once per
    module (starting and stopping servers would dominate the run time), counted per test."""
    attacker_host.hits.clear()
    return attacker_host


@pytest.fixture
def forge(
    issuer: str,
    clock: Clock,
    signing_keys: list[SigningKey],
    jwks_server: JwksServer,
    attacker_server: JwksServer,
    tmp_path: Any,
) -> Forge:
    dev_key, dev_kid = secrets.token_bytes(32), secrets.token_hex(4)
    write_development_key(tmp_path / "usersecrets", DEV_SECRETS_ID, dev_key, dev_kid)
    return Forge(
        issuer=issuer,
        now=int(clock.now),
        trusted=signing_keys[0],
        attacker=signing_keys[2],
        attacker_url=attacker_server.url,
        trusted_url=jwks_server.url,
        dev_key=dev_key,
        dev_kid=dev_kid,
    )


def app_for(attack: Attack, make_app: Callable[..., Flask]) -> Flask:
    """The app the attack is aimed at (the ``make_app`` fixture writes no store)."""
    config = dict(attack.config)
    if attack.env == "development":
        config.update(ENV="development", USER_SECRETS_ID=DEV_SECRETS_ID)
    return make_app(**config)


def assert_refused(response: Any, description: str) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    expected = f'Bearer error="invalid_token", error_description="{description}"'
    assert response.headers["WWW-Authenticate"] == expected
    assert response.get_json() == {"error": "invalid_token", "error_description": description}


# -- the tests -----------------------------------------------------------------------


def test_the_corpus_names_are_unique() -> None:
    names = [attack.name for attack in ATTACKS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_attack_is_refused(
    attack: Attack,
    forge: Forge,
    make_app: Callable[..., Flask],
    jwks_server: JwksServer,
    attacker_server: JwksServer,
) -> None:
    client = app_for(attack, make_app).test_client()
    request = attack.request(forge)
    assert_refused(client.get(attack.path, **request), attack.description)
    # Nothing in a token chooses a URL: the attacker's host is never asked, and the
    # trusted host only for the configured JWKS URI.
    assert attacker_server.hits == []
    assert set(jwks_server.hits) <= {JWKS_PATH}
    if not attack.reaches_keys:
        assert jwks_server.hits == []
    # Routing only records problems: a public view answers as if nothing were sent.
    public = client.get("/public", **request)
    assert (public.status_code, public.get_json()) == (200, {"public": True})


# Positive controls: the corpus refuses attacks, not merely everything.


def test_the_forged_baseline_token_is_accepted(forge: Forge, client: Any) -> None:
    response = client.get("/private", headers=bearer(forge.jws()))
    assert response.status_code == 200
    assert response.get_json() == {"sub": "auth0|attacker", "scheme": "Auth0"}


def test_a_development_token_is_accepted_in_development(
    forge: Forge, make_app: Callable[..., Flask]
) -> None:
    app = make_app(ENV="development", USER_SECRETS_ID=DEV_SECRETS_ID)
    token = forge.jws(
        forge.header("HS256", kid=forge.dev_kid), forge.dev_claims(), key=forge.dev_key
    )
    response = app.test_client().get("/private", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["scheme"] == "UserJwts"


@pytest.mark.parametrize(
    "value",
    ["bearer {}", "BEARER {}", "bEaReR {}", "Bearer     {}", "  Bearer {}  ", "\tBearer {}\t"],
    ids=[
        "lowercase",
        "uppercase",
        "mixed-case",
        "many-spaces",
        "surrounding-spaces",
        "surrounding-tabs",
    ],
)
def test_scheme_case_and_surrounding_white_space_are_accepted(
    forge: Forge, client: Any, value: str
) -> None:
    # DESIGN.md (fixed): "Bearer" in any case, one or more spaces, white space trimmed.
    response = client.get("/private", headers={"Authorization": value.format(forge.jws())})
    assert response.status_code == 200


@pytest.mark.parametrize("offset, status", [(3600.5, 200), (-61.5, 401)], ids=["future", "past"])
def test_a_float_exp_is_a_legal_numeric_date(
    forge: Forge, client: Any, offset: float, status: int
) -> None:
    response = client.get("/private", headers=bearer(forge.token(exp=forge.now + offset)))
    assert response.status_code == status
    if status == 401:
        assert_refused(response, EXPIRED)


def test_scope_with_a_space_inside_an_array_element_grants_nothing(
    forge: Forge, client: Any
) -> None:
    token = forge.token(scope=["read:messages write:messages"])
    response = client.get("/scoped", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json() == {"error": "insufficient_scope"}


def padded_to(forge: Forge, length: int) -> str:
    """The trusted key's token grown by padding members to exactly ``length`` characters.

    Base64url never yields a length of 4k + 1, so one segment alone cannot reach every
    total; padding both the header and the payload can.
    """
    for header_padding in range(4):
        header = forge.header(pad="h" * header_padding)
        base = len(forge.jws(header, forge.claims(pad="")))
        guess = (length - base) * 3 // 4
        for extra in range(max(guess - 3, 0), guess + 4):
            token = forge.jws(header, forge.claims(pad="p" * extra))
            if len(token) == length:
                return token
    raise AssertionError(f"no padding gives a token of {length} characters")


def test_a_token_of_exactly_the_size_limit_is_accepted(forge: Forge, client: Any) -> None:
    token = padded_to(forge, parsing.MAX_TOKEN_LENGTH)
    assert client.get("/private", headers=bearer(token)).status_code == 200


def test_oversized_input_is_refused_before_any_decoding(
    forge: Forge, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    for name in ("_b64decode", "_json_object"):
        original = getattr(parsing, name)

        def spy(data: Any, original: Callable[[Any], Any] = original, name: str = name) -> Any:
            decoded.append(name)
            return original(data)

        monkeypatch.setattr(parsing, name, spy)

    too_long = [
        padded_to(forge, parsing.MAX_TOKEN_LENGTH + 1),
        forge.jws(forge.header(padding="x" * parsing.MAX_TOKEN_LENGTH)),
        "e30." + "A" * 10_000_000 + ".e30",
    ]
    for token in too_long:
        assert_refused(client.get("/private", headers=bearer(token)), MALFORMED)
    assert decoded == []
    # The spies do see a token of normal size, so the silence above means something.
    assert client.get("/private", headers=bearer(forge.jws())).status_code == 200
    assert decoded.count("_json_object") == 2


def test_a_flood_of_random_kids_causes_one_fetch_per_cooldown(
    forge: Forge, make_app: Callable[..., Flask], jwks_server: JwksServer, clock: Clock
) -> None:
    client = make_app(JWKS_REFRESH_COOLDOWN=30).test_client()

    def flood(count: int = 50) -> None:
        for _ in range(count):
            token = forge.jws(forge.header(kid=secrets.token_hex(16)), key=forge.attacker)
            assert_refused(client.get("/private", headers=bearer(token)), NO_KEY)

    flood()
    assert jwks_server.jwks_hits() == 1  # the cold start only
    clock.advance(29)
    flood()
    assert jwks_server.jwks_hits() == 1
    clock.advance(1)
    flood()
    assert jwks_server.jwks_hits() == 2  # one refresh: the cooldown had passed
    clock.advance(15)
    flood()
    assert jwks_server.jwks_hits() == 2
    # The flood locks nobody out: the trusted key works throughout, with no extra fetch.
    assert client.get("/private", headers=bearer(forge.jws())).status_code == 200
    assert jwks_server.jwks_hits() == 2


def test_a_key_rotated_in_during_a_flood_is_found_after_one_cooldown(
    forge: Forge,
    make_app: Callable[..., Flask],
    jwks_server: JwksServer,
    clock: Clock,
    signing_keys: list[SigningKey],
) -> None:
    client = make_app(JWKS_REFRESH_COOLDOWN=30).test_client()
    for _ in range(20):
        token = forge.jws(forge.header(kid=secrets.token_hex(8)), key=forge.attacker)
        client.get("/private", headers=bearer(token))
    jwks_server.serve_keys(signing_keys[0].jwk, signing_keys[1].jwk, signing_keys[2].jwk)
    rotated = forge.jws(forge.header(kid=signing_keys[2].kid), key=signing_keys[2])
    assert_refused(client.get("/private", headers=bearer(rotated)), NO_KEY)
    clock.advance(30)
    assert client.get("/private", headers=bearer(rotated)).status_code == 200
    assert jwks_server.jwks_hits() == 2
