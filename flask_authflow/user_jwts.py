"""Issuing local development tokens, as ``dotnet user-jwts create`` does.

Framework-free: parsing the ``create`` options (dates, durations, claims), building the
claims, signing with PyJWT, and the record kept for each token in ``user-jwts.json``
(the same fields .NET writes, so both tools can list each other's tokens).
"""

from __future__ import annotations

import calendar
import re
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import MAXYEAR, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import jwt

from .user_secrets import UserSigningKey

DEFAULT_SCHEME = "UserJwts"
#: Tokens live six months by default, as the product description says.
DEFAULT_LIFETIME_MONTHS = 6
#: Claims that ``create`` sets itself; ``--claim`` may not replace them.
REGISTERED_CLAIMS = frozenset(
    {"sub", "unique_name", "iss", "aud", "nbf", "exp", "iat", "jti", "scope", "role"}
)

_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>[smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


class TokenOptionError(ValueError):
    """An option of ``create`` cannot be used; the message is one line for the user."""


def parse_valid_for(text: str) -> timedelta:
    """A duration such as ``30d``, ``12h``, ``90m``, ``45s`` or ``1.5h``.

    :raises TokenOptionError: for anything else, or for a duration of zero.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise TokenOptionError(
            f"--valid-for must be a number followed by s, m, h or d (such as 30d), not {text!r}."
        )
    try:
        duration = timedelta(**{_UNITS[match["unit"]]: float(match["number"])})
    except OverflowError as exc:
        raise TokenOptionError(f"--valid-for {text!r} is too long.") from exc
    if duration <= timedelta(0):
        raise TokenOptionError(f"--valid-for must be longer than zero, not {text!r}.")
    return duration


def parse_date(text: str, option: str) -> datetime:
    """An ISO 8601 date or date and time, in UTC when it has no offset.

    :param option: the option's name, for the message.
    :raises TokenOptionError: when ``text`` is not such a date.
    """
    value = text.strip()
    # Python 3.10's fromisoformat knows neither "Z" nor more than six fraction digits.
    value = re.sub(r"[zZ]$", "+00:00", value)
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise TokenOptionError(
            f"{option} must be an ISO 8601 date such as 2025-01-31 or 2025-01-31T12:00:00Z, "
            f"not {text!r}."
        ) from exc
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError as exc:
        raise TokenOptionError(f"{option} {text!r} is out of range.") from exc


def parse_claims(items: Iterable[str]) -> dict[str, str]:
    """``--claim name=value`` options as a mapping (the value may itself hold ``=``).

    :raises TokenOptionError: for an item without ``=`` or a name, a name given twice,
        or a registered claim that ``create`` sets itself.
    """
    claims: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise TokenOptionError(f"--claim must look like name=value, not {item!r}.")
        if name in REGISTERED_CLAIMS:
            raise TokenOptionError(
                f"--claim cannot set {name!r}: use the option of create that sets it."
            )
        if name in claims:
            raise TokenOptionError(f"--claim {name!r} is given more than once.")
        claims[name] = value
    return claims


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the month's last day.

    :raises OverflowError: past the year 9999, as ``datetime + timedelta`` does.
    """
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    if year > MAXYEAR:
        raise OverflowError("date value out of range")
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def token_lifetime(
    *,
    now: datetime,
    not_before: str | None = None,
    expires_on: str | None = None,
    valid_for: str | None = None,
) -> tuple[datetime, datetime]:
    """Resolve ``--not-before``, ``--expires-on`` and ``--valid-for`` into (nbf, exp).

    Without ``--not-before`` the token is valid from ``now``; the end is
    ``--expires-on``, else ``--valid-for`` after the start, else six months after it.
    An end in the past is allowed (it makes an expired token, handy for tests).

    :raises TokenOptionError: for a bad value, both ``--expires-on`` and
        ``--valid-for``, or an end not after the start.
    """
    if expires_on is not None and valid_for is not None:
        raise TokenOptionError("--expires-on and --valid-for cannot be used together.")
    start = parse_date(not_before, "--not-before") if not_before is not None else now
    try:
        if expires_on is not None:
            end = parse_date(expires_on, "--expires-on")
        elif valid_for is not None:
            end = start + parse_valid_for(valid_for)
        else:
            end = add_months(start, DEFAULT_LIFETIME_MONTHS)
    except OverflowError as exc:
        raise TokenOptionError("The token would expire after the year 9999.") from exc
    if end <= start:
        raise TokenOptionError("The token must expire after it becomes valid (--not-before).")
    return start, end


def new_token_id(taken: Collection[str] = ()) -> str:
    """A fresh 8-hex-digit id (the ``jti``) not among ``taken``."""
    while True:
        token_id = secrets.token_hex(4)
        if token_id not in taken:
            return token_id


def dotnet_value(values: Sequence[str]) -> str | list[str]:
    """One value as a string and several as an array: how .NET writes ``aud``,
    ``scope`` and ``role``."""
    return values[0] if len(values) == 1 else list(values)


def issue_token(
    key: UserSigningKey,
    *,
    name: str,
    audiences: Iterable[str],
    issuer: str,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    claims: Mapping[str, Any] = _NO_CLAIMS,
    not_before: datetime,
    expires_at: datetime,
    issued_at: datetime | None = None,
    jti: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign an HS256 token with ``key`` and return it with its claims.

    The header carries ``kid`` = the key's id. ``aud``, ``scope`` and ``role`` are a
    string for one value and an array for several, as .NET writes them. ``claims`` are
    added last, so a test may override any claim set here.

    :param not_before: becomes ``nbf``; times must be timezone-aware.
    :param expires_at: becomes ``exp``.
    :param issued_at: becomes ``iat``; defaults to now.
    :param jti: defaults to a fresh 8-hex-digit id.
    :raises ValueError: for an empty name, issuer or audience list, or a naive time.
    """
    audience_list = _unique(audiences)
    if not name or not issuer or not audience_list or not all(audience_list):
        raise ValueError("A token needs a name, an issuer and at least one non-empty audience.")
    issued = issued_at if issued_at is not None else datetime.now(timezone.utc)
    payload: dict[str, Any] = {
        "sub": name,
        "unique_name": name,
        "jti": jti if jti is not None else new_token_id(),
    }
    for claim, values in (("scope", _unique(scopes)), ("role", _unique(roles))):
        if values:
            payload[claim] = dotnet_value(values)
    payload.update(
        aud=dotnet_value(audience_list),
        iss=issuer,
        nbf=_numeric_date(not_before),
        exp=_numeric_date(expires_at),
        iat=_numeric_date(issued),
    )
    payload.update(claims)
    token = jwt.encode(payload, key.value, algorithm="HS256", headers={"kid": key.id})
    return token, payload


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a stored token, for display only (nothing is verified).

    :raises ValueError: when ``token`` is not a JWT.
    """
    try:
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ValueError("not a JWT") from exc
    return header, payload


@dataclass(frozen=True)
class IssuedToken:
    """One entry of ``user-jwts.json``, in the fields ``dotnet user-jwts`` writes."""

    id: str
    scheme: str
    name: str
    #: The audiences joined with ``", "``, as .NET stores them.
    audience: str
    not_before: datetime
    expires: datetime
    issued: datetime
    token: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    custom_claims: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_claims(
        cls, scheme: str, token: str, claims: Mapping[str, Any], custom_claims: Mapping[str, str]
    ) -> IssuedToken:
        """Describe a token made by :func:`issue_token` from the claims it holds.

        :param custom_claims: the ``--claim`` values, kept apart as .NET does.
        """
        return cls(
            id=claims["jti"],
            scheme=scheme,
            name=claims["sub"],
            audience=", ".join(_as_list(claims["aud"])),
            not_before=datetime.fromtimestamp(claims["nbf"], timezone.utc),
            expires=datetime.fromtimestamp(claims["exp"], timezone.utc),
            issued=datetime.fromtimestamp(claims["iat"], timezone.utc),
            token=token,
            scopes=tuple(_as_list(claims.get("scope", []))),
            roles=tuple(_as_list(claims.get("role", []))),
            custom_claims=dict(custom_claims),
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON object stored in ``user-jwts.json``."""
        return {
            "Id": self.id,
            "Scheme": self.scheme,
            "Name": self.name,
            "Audience": self.audience,
            "NotBefore": self.not_before.isoformat(),
            "Expires": self.expires.isoformat(),
            "Issued": self.issued.isoformat(),
            "Token": self.token,
            "Scopes": list(self.scopes),
            "Roles": list(self.roles),
            "CustomClaims": dict(self.custom_claims),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> IssuedToken:
        """Read a record written by this module or by ``dotnet user-jwts``.

        :raises ValueError: naming the first field that is missing or of the wrong type.
        """
        text = {name: _record_string(record, name) for name in ("Id", "Scheme", "Name", "Token")}
        # .NET writes the audiences joined into one string, possibly empty.
        audience = record.get("Audience") or ""
        if not isinstance(audience, str):
            raise ValueError("'Audience' is not a string")
        dates = {name: _record_date(record, name) for name in ("NotBefore", "Expires", "Issued")}
        lists = {name: _record_strings(record, name) for name in ("Scopes", "Roles")}
        custom = record.get("CustomClaims") or {}
        if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
            raise ValueError("'CustomClaims' is not an object of strings")
        return cls(
            id=text["Id"],
            scheme=text["Scheme"],
            name=text["Name"],
            audience=audience,
            not_before=dates["NotBefore"],
            expires=dates["Expires"],
            issued=dates["Issued"],
            token=text["Token"],
            scopes=lists["Scopes"],
            roles=lists["Roles"],
            custom_claims=dict(custom),
        )


def _unique(values: Iterable[str]) -> list[str]:
    """The values in their first order, without repeats."""
    return list(dict.fromkeys(values))


def _numeric_date(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("Token times must be timezone-aware datetimes.")
    return int(moment.timestamp())


def _as_list(value: str | list[str]) -> list[str]:
    """A claim that is a string for one value and an array for several, as a list."""
    return [value] if isinstance(value, str) else list(value)


def _record_string(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name!r} is missing or not a string")
    return value


def _record_date(record: Mapping[str, Any], name: str) -> datetime:
    value = _record_string(record, name)
    try:
        return parse_date(value, name)
    except TokenOptionError as exc:
        raise ValueError(f"{name!r} is not an ISO 8601 date") from exc


def _record_strings(record: Mapping[str, Any], name: str) -> tuple[str, ...]:
    # .NET writes null for a list that was never set.
    value = record.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name!r} is not a list of strings")
    return tuple(value)
