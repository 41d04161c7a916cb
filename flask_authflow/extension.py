"""The Flask layer: :class:`AuthFlow`, its per-app state, the routing hook and error handler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Request, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_caching import Cache

from .authenticator import Authenticator, RoutedToken
from .cli import user_jwts_cli
from .config import ConfigurationError, Settings, load_settings
from .errors import AuthError
from .jwks import CacheBackend
from .schemes import build_schemes
from .signals import authentication_failed, token_validated
from .token import Token
from .user_secrets import UserSecretsError, ensure_outside_source_tree

logger = logging.getLogger("flask_authflow")

EXTENSION_KEY = "authflow"
#: Where the routing step leaves its authenticator and outcome on ``g``.
ROUTED_ATTR = "_authflow_routed"
#: Where the validated token is kept on ``g`` for the rest of the request.
TOKEN_ATTR = "_authflow_token"

ErrorRenderer = Callable[[AuthError], ResponseReturnValue]
R = TypeVar("R", bound=ErrorRenderer)


def default_error_response(error: AuthError) -> ResponseReturnValue:
    """The error contract's response: status, JSON body and headers of ``error``."""
    return jsonify(error.body()), error.status_code, error.headers()


@dataclass(frozen=True)
class AuthFlowState:
    """What :meth:`AuthFlow.init_app` keeps for one app in ``app.extensions["authflow"]``."""

    extension: AuthFlow
    settings: Settings
    authenticator: Authenticator
    cache: Cache


class AuthFlow:
    """JWT bearer authentication for a Flask app.

    :param app: the app to initialise now; or call :meth:`init_app` later (one
        ``AuthFlow`` may serve several apps).
    :param cache: a ``flask_caching.Cache`` to keep the signing keys in. Used as it is
        when already initialised on the app, otherwise initialised with the
        ``AUTHFLOW_CACHE_*`` settings. Without one, each app gets its own cache built
        from those settings (``SimpleCache`` by default).
    :param clock: seconds since the epoch; tests may pass a controllable one.
    """

    def __init__(
        self,
        app: Flask | None = None,
        cache: Cache | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._clock = clock
        self._render_error: ErrorRenderer = default_error_response
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read and validate the ``AUTHFLOW_*`` configuration and set up ``app``.

        :raises RuntimeError: when ``app`` was already initialised.
        :raises ConfigurationError: when a setting is wrong; the message names the key.
            Also when ``app.app_ctx_globals_class`` makes a ``g`` without a
            ``__dict__``, where Flask-AuthFlow keeps its per-request state.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("Flask-AuthFlow is already initialised on this app.")
        _check_globals_class(app)
        settings = load_settings(app.config, app_name=app.name, debug=app.debug)
        if settings.is_development:
            try:
                ensure_outside_source_tree(settings.user_secrets_dir, app.root_path)
            except UserSecretsError as exc:
                raise ConfigurationError(f"AUTHFLOW_USER_SECRETS_DIR: {exc}") from exc
        cache = self._cache_for(app, settings)
        backend: CacheBackend = app.extensions["cache"][cache]
        schemes = build_schemes(settings, backend, clock=self._clock)
        app.extensions[EXTENSION_KEY] = AuthFlowState(
            extension=self,
            settings=settings,
            authenticator=Authenticator(
                schemes, clock=self._clock, token_cache_size=settings.token_cache_size
            ),
            cache=cache,
        )
        app.before_request(_routing_hook(app.extensions[EXTENSION_KEY].authenticator))
        app.register_error_handler(AuthError, _render_auth_error)
        if "user-jwts" not in app.cli.commands:
            app.cli.add_command(user_jwts_cli)

    def error_response(self, renderer: R) -> R:
        """Register a function that turns an :class:`AuthError` into a response.

        Use it as a decorator; the function receives the error (its ``status_code``,
        ``body()`` and ``headers()`` give the documented response) and returns any
        Flask response value::

            @auth.error_response
            def problem_json(error):
                return {"title": error.reason}, error.status_code, error.headers()
        """
        self._render_error = renderer
        return renderer

    def _cache_for(self, app: Flask, settings: Settings) -> Cache:
        cache = self._cache if self._cache is not None else Cache()
        if cache not in app.extensions.get("cache", {}):
            try:
                cache.init_app(app, config=dict(settings.cache_config))
            except (ImportError, AttributeError, TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"AUTHFLOW_CACHE_TYPE: flask-caching could not build the cache "
                    f"{settings.cache_config.get('CACHE_TYPE')!r} ({exc})."
                ) from exc
        return cache


def get_state(app: Flask | None = None) -> AuthFlowState:
    """The Flask-AuthFlow state of ``app`` (default: the current app)."""
    app = app if app is not None else current_app
    try:
        state: AuthFlowState = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "Flask-AuthFlow is not initialised on this app; did you call init_app?"
        ) from None
    return state


def authenticate_request() -> Token:
    """Validate the current request's bearer token once and keep it on ``g``.

    :raises AuthError: the documented failure; the app's error handler renders it.
    """
    # This runs on every protected request, so it is written for speed. Context
    # objects are resolved once, through _get_current_object(): each attribute access
    # through Flask's proxies costs a context lookup (request.environ through the
    # proxy costs more than a whole token-cache hit). g's attributes are read and
    # written through its __dict__: g.get() and setattr(g, ...) are Python-level
    # methods, and a missing attribute costs an exception inside Flask. The same
    # expression stands in the routing hook and in current_token, each written out:
    # a shared helper measured +0.009 on the repeated-token ratio (target 1.15).
    request_globals: dict[str, Any] = vars(g._get_current_object())
    token: Token | None = request_globals.get(TOKEN_ATTR)
    if token is not None:
        return token
    routed: RoutedToken | None
    routing: tuple[Authenticator, RoutedToken] | None = request_globals.get(ROUTED_ATTR)
    if routing is not None:
        authenticator, routed = routing
    else:  # no header, or a view called outside the app's hook
        authenticator = get_state().authenticator
        routed = authenticator.route(_request_object().environ.get("HTTP_AUTHORIZATION"))
    try:
        token = authenticator.authenticate(routed)
    except AuthError as error:
        scheme = routed.scheme.name if routed is not None and routed.scheme is not None else None
        announce_failure(error, scheme=scheme, subject=None)
        raise
    request_globals[TOKEN_ATTR] = token
    if token_validated.receivers:
        token_validated.send(_current_app_object(), scheme=token.scheme, subject=token.subject)
    return token


def announce_failure(error: AuthError, *, scheme: str | None, subject: str | None) -> None:
    """Send ``authentication_failed`` (never with the token) and log the reason at debug."""
    logger.debug("Flask-AuthFlow refused a request: %s (%s).", error.reason, error.status_code)
    if not authentication_failed.receivers:
        return
    authentication_failed.send(
        _current_app_object(),
        scheme=scheme,
        subject=subject,
        reason=error.reason,
        status=error.status_code,
    )


def _current_app_object() -> Flask:
    """The real app behind ``current_app``: signal receivers connect to that object."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def _check_globals_class(app: Flask) -> None:
    """The request path keeps its state in ``g``'s ``__dict__``; refuse at start-up a
    custom ``g`` class without one rather than answer 500 to every token later."""
    try:
        vars(app.app_ctx_globals_class())
    except TypeError:
        raise ConfigurationError(
            "app.app_ctx_globals_class: Flask-AuthFlow keeps request state in g's "
            f"__dict__, and {app.app_ctx_globals_class.__name__} instances have none."
        ) from None


def _request_object() -> Request:
    request_object: Request = request._get_current_object()  # type: ignore[attr-defined]
    return request_object


def _routing_hook(authenticator: Authenticator) -> Callable[[], None]:
    """The ``before_request`` hook of one app, bound to that app's authenticator.

    It leaves ``(authenticator, outcome)`` on ``g``, so that a protected view finds
    both without looking the app's state up again.
    """
    route = authenticator.route

    def route_request() -> None:
        """Read the token's issuer and pick its scheme. Problems are only recorded, so
        public views answer the same with any token or none. Without an
        ``Authorization`` header there is nothing to route."""
        # Written out rather than through _request_object() and a g helper: this runs
        # on every request, and the calls measurably cost (see authenticate_request).
        environ = request._get_current_object().environ  # type: ignore[attr-defined]
        authorization = environ.get("HTTP_AUTHORIZATION")
        if authorization is not None:
            vars(g._get_current_object())[ROUTED_ATTR] = (authenticator, route(authorization))

    return route_request


def _render_auth_error(error: AuthError) -> Any:
    return get_state().extension._render_error(error)
