"""``requires_auth``, ``requires_scope``, ``requires_role`` and the ``current_token`` proxy.

The decorators are thin: each calls :func:`authenticate_request` and then checks what
it needs of the token. They work on plain, async and blueprint views alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast, overload

from flask import current_app, g
from werkzeug.local import LocalProxy

from .errors import Forbidden, InsufficientScope, MissingRole
from .extension import TOKEN_ATTR, announce_failure, authenticate_request
from .token import Token

F = TypeVar("F", bound=Callable[..., Any])


def _current_token() -> Token:
    try:
        # g's __dict__, as authenticate_request() keeps it there.
        token: Token | None = vars(g._get_current_object()).get(TOKEN_ATTR)
    except RuntimeError:  # no app context
        token = None
    if token is None:
        raise RuntimeError("current_token is only available inside a protected view.")
    return token


class _TokenProxy(LocalProxy):  # type: ignore[type-arg]
    """A ``LocalProxy`` whose attribute reads go straight to the token.

    Views read ``current_token.subject`` and the like on every request. Each public
    attribute of :class:`Token` is a property here, so the normal lookup finds it:
    through werkzeug's ``__getattr__`` a read costs a failed lookup (an exception)
    first, and then a bound callable: about two and a half times as much.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:  # anything not made a property below
        return getattr(_current_token(), name)


def _read_through(name: str) -> property:
    return property(lambda proxy: getattr(_current_token(), name), doc=f"``Token.{name}``")


for _name in dir(Token):
    if not _name.startswith("_"):
        setattr(_TokenProxy, _name, _read_through(_name))


#: The validated :class:`~flask_authflow.token.Token` of the current request.
current_token: Token = cast(Token, _TokenProxy(_current_token))


def _protect(view: F, check: Callable[[Token], None] | None = None) -> F:
    # Decided once: Flask's ensure_sync hands a plain function back as it is, and
    # asking per request costs an inspect call.
    is_async = inspect.iscoroutinefunction(view)

    @wraps(view)
    def protected(*args: Any, **kwargs: Any) -> Any:
        token = authenticate_request()
        if check is not None:
            try:
                check(token)
            except Forbidden as error:
                announce_failure(error, scheme=token.scheme, subject=token.subject)
                raise
        if is_async:
            return current_app.ensure_sync(view)(*args, **kwargs)
        return view(*args, **kwargs)

    return cast(F, protected)


@overload
def requires_auth(view: F) -> F: ...
@overload
def requires_auth(view: None = None) -> Callable[[F], F]: ...


def requires_auth(view: F | None = None) -> F | Callable[[F], F]:
    """Require a valid bearer token; works as ``@requires_auth`` and ``@requires_auth()``."""
    if view is None:
        return _protect
    return _protect(view)


def requires_scope(*scopes: str) -> Callable[[F], F]:
    """Require a valid token that grants every one of ``scopes`` (else 403)."""
    _check_names("requires_scope", scopes)
    needed = frozenset(scopes)

    def check(token: Token) -> None:
        if not needed <= token.scopes:
            raise InsufficientScope()

    return _decorator("requires_scope", needed, check)


def requires_role(*roles: str) -> Callable[[F], F]:
    """Require a valid token that carries at least one of ``roles`` (else 403)."""
    _check_names("requires_role", roles)
    accepted = frozenset(roles)

    def check(token: Token) -> None:
        if accepted.isdisjoint(token.roles):
            raise MissingRole()

    return _decorator("requires_role", accepted, check)


def _decorator(name: str, names: frozenset[str], check: Callable[[Token], None]) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        if not names:
            raise TypeError(f"{name}() needs at least one name, e.g. @{name}('admin').")
        return _protect(view, check)

    return decorate


def _check_names(name: str, values: tuple[Any, ...]) -> None:
    if any(not isinstance(value, str) or not value for value in values):
        raise TypeError(
            f"{name} takes names as strings, e.g. @{name}('read:messages'), "
            "not a view: it cannot be used bare."
        )
