"""The validated token as views see it: an immutable view of its claims."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NoReturn

from .errors import MalformedToken
from .parsing import is_string_or_strings

_set = object.__setattr__


class Token:
    """A token that passed every check of its scheme.

    Instances are deeply immutable, so one instance can be handed to every request
    that presents the same token without any of them affecting the others.
    """

    # A plain class with slots rather than a frozen dataclass: a new token builds one
    # per request, and the dataclass's generated __init__ costs three times as much.
    __slots__ = ("claims", "raw", "roles", "scheme", "scopes", "subject")

    #: The token string, as the client sent it.
    raw: str
    #: ``"Auth0"`` or ``"UserJwts"``: the scheme that validated the token.
    scheme: str
    #: Every claim, read-only (arrays are tuples, objects are read-only mappings).
    claims: Mapping[str, Any]
    #: The ``scope`` words and ``permissions`` entries.
    scopes: frozenset[str]
    #: The ``role`` and ``roles`` entries and those of ``AUTHFLOW_ROLE_CLAIMS``.
    roles: frozenset[str]
    #: The ``sub`` claim. An attribute, not a property: views read it on every request.
    subject: str | None

    def __init__(
        self,
        raw: str,
        scheme: str,
        claims: Mapping[str, Any],
        scopes: frozenset[str],
        roles: frozenset[str],
    ) -> None:
        _set(self, "raw", raw)
        _set(self, "scheme", scheme)
        _set(self, "claims", claims)
        _set(self, "scopes", scopes)
        _set(self, "roles", roles)
        _set(self, "subject", claims.get("sub"))

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"Token is immutable; cannot set {name!r}.")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Token is immutable; cannot delete {name!r}.")

    def __repr__(self) -> str:  # never the token string or its claims
        return f"Token(scheme={self.scheme!r}, scopes={self.scopes!r}, roles={self.roles!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Token)
        return (self.raw, self.scheme, self.claims, self.scopes, self.roles) == (
            other.raw, other.scheme, other.claims, other.scopes, other.roles
        )

    __hash__ = None  # type: ignore[assignment]  # equal tokens may hold unhashable claims

    @property
    def issuer(self) -> str | None:
        return self.claims.get("iss")

    @property
    def expires_at(self) -> float:
        """The ``exp`` claim (always present on a validated token)."""
        return float(self.claims["exp"])

    @classmethod
    def from_claims(
        cls, raw: str, scheme: str, claims: Mapping[str, Any], role_claims: Iterable[str] = ()
    ) -> Token:
        """Build a token, reading scopes and roles from the claims (which are copied)."""
        return cls._own(raw, scheme, dict(claims), role_claims)

    @classmethod
    def _own(cls, raw: str, scheme: str, claims: dict[str, Any], role_claims: Iterable[str]) -> Token:
        # Takes ``claims`` over: the caller must hold no other reference to change it by.
        scope = claims.get("scope")
        if scope is None:
            scopes = _NONE
        else:
            scopes = frozenset(scope.split() if scope.__class__ is str else scope) or _NONE
        permissions = claims.get("permissions")
        if permissions:
            scopes = scopes.union(permissions)
        roles = _NONE
        if role_claims or "role" in claims or "roles" in claims:
            found: set[str] = set()
            for name in ("role", "roles", *role_claims):
                value = claims.get(name)
                if value is None:
                    continue
                if not is_string_or_strings(value):
                    raise MalformedToken()
                found.update([value] if isinstance(value, str) else value)
            roles = frozenset(found) or _NONE
        return cls(raw, scheme, _frozen_object(claims), scopes, roles)


#: One empty set for every token without scopes or roles (a cached token keeps its sets).
_NONE: frozenset[str] = frozenset()
#: The classes of JSON values that are immutable already (``bool`` included).
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _frozen_object(value: dict[str, Any]) -> Mapping[str, Any]:
    """``value`` made read-only, in place of a copy: its arrays become tuples and its
    objects read-only mappings. The caller must own ``value``."""
    if set(map(type, value.values())) <= _IMMUTABLE:  # flat, as most claims are
        return MappingProxyType(value)
    return MappingProxyType({key: _frozen(item) for key, item in value.items()})


def _frozen(value: Any) -> Any:
    if value.__class__ in _IMMUTABLE:
        return value
    if isinstance(value, Mapping):
        # Copied: from_claims() copies only the top level of its argument.
        return _frozen_object(dict(value))
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value
