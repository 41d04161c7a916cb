"""The validated token as views see it: an immutable view of its claims."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from types import MappingProxyType
from typing import Any

from .errors import MalformedToken
from .parsing import is_string_or_strings


@dataclass(frozen=True, slots=True)
class Token:
    """A token that passed every check of its scheme.

    Instances are deeply immutable, so one instance can be handed to every request
    that presents the same token without any of them affecting the others.
    """

    raw: str = field(repr=False)
    scheme: str
    claims: Mapping[str, Any] = field(repr=False)
    scopes: frozenset[str]
    roles: frozenset[str]
    #: The ``sub`` claim. An attribute, not a property: views read it on every request.
    subject: str | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", self.claims.get("sub"))

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
        """Build a token, reading scopes and roles from the claims."""
        scopes = frozenset(_words(claims.get("scope"))) or _NONE
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
        return cls(raw=raw, scheme=scheme, claims=_frozen(claims), scopes=scopes, roles=roles)


def _words(scope: str | list[str] | None) -> list[str]:
    if scope is None:
        return []
    if isinstance(scope, str):
        return scope.split()
    return scope


#: One empty set for every token without scopes or roles (a cached token keeps its sets).
_NONE: frozenset[str] = frozenset()
#: Claim values that are immutable already (JSON gives ``bool`` as a subclass of ``int``).
_IMMUTABLE = (str, int, float, type(None))


def _frozen(value: Any) -> Any:
    if isinstance(value, _IMMUTABLE):  # most claims; checked first, it is the cheap test
        return value
    if isinstance(value, Mapping):
        items = value.values()
        if all(map(isinstance, items, repeat(_IMMUTABLE))):  # flat claims: a plain copy
            return MappingProxyType(dict(value))
        return MappingProxyType(
            {key: item if isinstance(item, _IMMUTABLE) else _frozen(item) for key, item in value.items()}
        )
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value
