"""``flask user-jwts``: issue and manage local development tokens, like ``dotnet user-jwts``.

A thin layer over :mod:`flask_authflow.user_secrets` (the store) and
:mod:`flask_authflow.user_jwts` (the tokens). Every command validates its options before
it touches the store, and every error is one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import current_app
from flask.cli import AppGroup

from .config import ConfigurationError, Settings, load_settings
from .user_jwts import (
    DEFAULT_SCHEME,
    IssuedToken,
    TokenOptionError,
    decode_unverified,
    issue_token,
    new_token_id,
    parse_claims,
    token_lifetime,
)
from .user_secrets import (
    UserSecretsError,
    UserSecretsStore,
    UserSigningKey,
    ensure_outside_source_tree,
    signing_keys_property,
)

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("default", "token", "json")


class _UsageError(click.ClickException):
    """A usage error shown as one line, without click's usage banner."""

    exit_code = 2


class _UserJwtsCommand(click.Command):
    """Turns every expected failure into a one-line :class:`click.ClickException`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _UsageError(_one_line(exc.format_message())) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UserSecretsError, TokenOptionError) as exc:
            raise click.ClickException(_one_line(str(exc))) from exc


class _UserJwtsGroup(AppGroup):
    command_class = _UserJwtsCommand

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise _UsageError(_one_line(exc.format_message())) from exc


user_jwts_cli = _UserJwtsGroup(
    "user-jwts",
    help="Issue and manage JWTs for local development (like dotnet user-jwts).",
)


def _output_option(function: F) -> F:
    return click.option(
        "--output",
        "-o",
        type=click.Choice(OUTPUT_FORMATS),
        default="default",
        show_default=True,
        help="default: for people; token: only the bare value(s); json: one JSON document.",
    )(function)


def _valid_scheme(context: click.Context, parameter: click.Parameter, scheme: str) -> str:
    try:
        signing_keys_property(scheme)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    return scheme


def _scheme_option(function: F) -> F:
    return click.option(
        "--scheme",
        default=DEFAULT_SCHEME,
        show_default=True,
        callback=_valid_scheme,
        help="The scheme the signing key is filed under.",
    )(function)


def _issuer_option(function: F) -> F:
    return click.option(
        "--issuer", help="The issuer (iss) and its key. [default: AUTHFLOW_USER_JWTS_ISSUER]"
    )(function)


def _current_settings() -> Settings:
    """The app's validated Flask-AuthFlow settings: those ``init_app`` read, or, for an
    app that registered the group without the extension, read now."""
    state = current_app.extensions.get("authflow")
    if state is not None:
        settings: Settings = state.settings
        return settings
    try:
        return load_settings(
            current_app.config, app_name=current_app.name, debug=current_app.debug
        )
    except ConfigurationError as exc:
        raise click.ClickException(_one_line(str(exc))) from exc


def _open_store(settings: Settings) -> UserSecretsStore:
    """The app's store, after refusing a root inside the source tree."""
    ensure_outside_source_tree(settings.user_secrets_dir, Path(current_app.root_path))
    return UserSecretsStore(settings.user_secrets_dir, settings.user_secrets_id)


@user_jwts_cli.command("create")
@_scheme_option
@click.option("--name", "-n", help="The token's subject (sub, unique_name). [default: OS user]")
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    help="An audience; repeatable. [default: AUTHFLOW_USER_JWTS_AUDIENCES]",
)
@_issuer_option
@click.option("--scope", "scopes", multiple=True, help="A scope; repeatable.")
@click.option("--role", "roles", multiple=True, help="A role; repeatable.")
@click.option(
    "--claim", "claims", multiple=True, metavar="NAME=VALUE", help="A custom claim; repeatable."
)
@click.option(
    "--not-before", help="Start of validity, ISO 8601 (UTC without offset). [default: now]"
)
@click.option("--expires-on", help="End of validity, ISO 8601 (UTC without offset).")
@click.option(
    "--valid-for", help="Lifetime from --not-before, such as 30d, 12h, 15m. [default: 6 months]"
)
@_output_option
def create(
    scheme: str,
    name: str | None,
    audiences: tuple[str, ...],
    issuer: str | None,
    scopes: tuple[str, ...],
    roles: tuple[str, ...],
    claims: tuple[str, ...],
    not_before: str | None,
    expires_on: str | None,
    valid_for: str | None,
    output: str,
) -> None:
    """Issue a JWT, creating the signing key on first use."""
    settings = _current_settings()
    # Everything is validated before the store is touched: a bad call writes nothing.
    custom_claims = parse_claims(claims)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    starts, ends = token_lifetime(
        now=now, not_before=not_before, expires_on=expires_on, valid_for=valid_for
    )
    subject = name if name is not None else _os_user()
    if not subject.strip():
        raise click.ClickException("--name must not be empty.")
    if any(not audience.strip() for audience in audiences):
        raise click.ClickException("--audience must not be empty.")
    store = _open_store(settings)
    # Read first so that a corrupt user-jwts.json is refused before a key is written.
    taken = store.token_records().keys()
    key = store.get_or_create_key(scheme, issuer or settings.user_jwts_issuer)
    token, payload = issue_token(
        key,
        name=subject,
        audiences=audiences or settings.user_jwts_audiences,
        issuer=key.issuer,
        scopes=scopes,
        roles=roles,
        claims=custom_claims,
        not_before=starts,
        expires_at=ends,
        issued_at=now,
        jti=new_token_id(taken),
    )
    issued = IssuedToken.from_claims(key.scheme, token, payload, custom_claims)
    store.add_token_record(issued.id, issued.to_record())

    if output == "token":
        click.echo(issued.token)
    elif output == "json":
        _echo_json(issued.to_record())
    else:
        click.echo(f"New JWT saved with ID '{issued.id}'.")
        _echo_details(issued, show_all=False)
        click.echo(f"Token: {issued.token}")
    if not settings.is_development:
        click.echo(
            "Note: AUTHFLOW_ENV is 'production' for this app, which refuses development "
            "tokens; run it with --debug or AUTHFLOW_ENV='development'.",
            err=True,
        )


@user_jwts_cli.command("list")
@click.option("--show-tokens", is_flag=True, help="Show the tokens themselves.")
@_output_option
def list_tokens(show_tokens: bool, output: str) -> None:
    """List the JWTs issued for this app."""
    settings = _current_settings()
    store = _open_store(settings)
    issued = _issued_tokens(store)
    if output == "token":
        for item in issued:
            click.echo(item.token)
    elif output == "json":
        records = [item.to_record() for item in issued]
        _echo_json([{k: v for k, v in r.items() if show_tokens or k != "Token"} for r in records])
    else:
        click.echo(f"App: {current_app.name}")
        click.echo(f"User secrets ID: {settings.user_secrets_id}")
        click.echo(f"Store: {store.folder}")
        if not issued:
            click.echo("No JWTs created yet.")
            return
        headers = ["ID", "Scheme", "Name", "Audience", "Issued On", "Expires On"]
        rows = [
            [i.id, i.scheme, i.name, i.audience, i.issued.isoformat(), i.expires.isoformat()]
            + ([i.token] if show_tokens else [])
            for i in issued
        ]
        click.echo(_table(headers + (["Token"] if show_tokens else []), rows))


@user_jwts_cli.command("print")
@click.argument("token_id", metavar="ID")
@click.option(
    "--show-all", is_flag=True, help="Also show empty fields and the decoded header and payload."
)
@_output_option
def print_token(token_id: str, show_all: bool, output: str) -> None:
    """Show the JWT with the given ID."""
    store = _open_store(_current_settings())
    issued = next((item for item in _issued_tokens(store) if item.id == token_id), None)
    if issued is None:
        raise click.ClickException(f"No JWT with ID '{token_id}' was found.")
    decoded: dict[str, Any] = {}
    if show_all:
        try:
            header, payload = decode_unverified(issued.token)
        except ValueError as exc:
            raise click.ClickException(
                f"The token stored with ID '{token_id}' in {store.tokens_path} is not a JWT."
            ) from exc
        decoded = {"Header": header, "Payload": payload}
    if output == "token":
        click.echo(issued.token)
    elif output == "json":
        _echo_json({**issued.to_record(), **decoded})
    else:
        click.echo(f"Found JWT with ID '{issued.id}'.")
        _echo_details(issued, show_all=show_all)
        for label, part in decoded.items():
            click.echo(f"Token {label}: {json.dumps(part)}")
        click.echo(f"{'Compact Token' if show_all else 'Token'}: {issued.token}")


@user_jwts_cli.command("remove")
@click.argument("token_id", metavar="ID")
@_output_option
def remove(token_id: str, output: str) -> None:
    """Delete the JWT with the given ID from the store."""
    store = _open_store(_current_settings())
    record = store.remove_token_record(token_id)
    if record is None:
        raise click.ClickException(f"No JWT with ID '{token_id}' was found.")
    _echo_removed([record], output, f"Deleted JWT with ID '{token_id}'.")


@user_jwts_cli.command("clear")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@_output_option
def clear(force: bool, output: str) -> None:
    """Delete every JWT issued for this app (the signing key stays)."""
    settings = _current_settings()
    store = _open_store(settings)
    count = len(store.token_records())
    if count and not force:
        question = f"Delete {count} JWT(s) of user secrets '{settings.user_secrets_id}'?"
        if not click.confirm(question, err=True):
            click.echo("Canceled; no JWTs were deleted.", err=True)
            return
    removed = store.clear_token_records()
    message = f"Deleted {len(removed)} JWT(s)." if removed else "There are no JWTs to delete."
    _echo_removed(list(removed.values()), output, message)


@user_jwts_cli.command("key")
@_scheme_option
@_issuer_option
@click.option(
    "--reset",
    is_flag=True,
    help="Replace the key; every JWT signed with the old one stops working.",
)
@click.option("--force", is_flag=True, help="With --reset: do not ask for confirmation.")
@_output_option
def key(scheme: str, issuer: str | None, reset: bool, force: bool, output: str) -> None:
    """Show or reset the signing key."""
    settings = _current_settings()
    if force and not reset:
        raise click.ClickException("--force only applies with --reset.")
    issuer = issuer or settings.user_jwts_issuer
    store = _open_store(settings)
    if reset:
        question = (
            f"Reset the signing key of issuer '{issuer}' (scheme '{scheme}')? "
            "Every JWT signed with it stops working."
        )
        if not force and not click.confirm(question, err=True):
            click.echo("Key reset canceled.", err=True)
            return
        signing_key: UserSigningKey | None = store.reset_key(scheme, issuer)
    else:
        signing_key = store.find_key(scheme, issuer)

    if output == "json":
        _echo_json(_key_record(signing_key) if signing_key else None)
    elif signing_key is None:
        if output == "default":
            click.echo(
                f"No signing key for issuer '{issuer}' (scheme '{scheme}') yet: 'create' makes "
                "one with the first JWT, or make one now with 'key --reset'."
            )
    elif output == "token":
        click.echo(_key_record(signing_key)["Value"])
    else:
        click.echo(
            f"{'New signing key' if reset else 'Signing key'} for issuer '{issuer}' "
            f"(scheme '{scheme}'), stored in {store.secrets_path}:"
        )
        for name, value in _key_record(signing_key).items():
            click.echo(f"{name}: {value}")


# -- helpers ----------------------------------------------------------------------


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:
        raise click.ClickException("Cannot tell the OS user's name; pass --name.") from exc


def _issued_tokens(store: UserSecretsStore) -> list[IssuedToken]:
    issued = []
    for token_id, record in store.token_records().items():
        try:
            issued.append(IssuedToken.from_record(record))
        except ValueError as exc:
            raise click.ClickException(
                f"{store.tokens_path} is corrupt: the JWT '{token_id}' cannot be read ({exc}); "
                f"fix it or delete it with 'remove {token_id}'."
            ) from exc
    return issued


def _key_record(signing_key: UserSigningKey) -> dict[str, Any]:
    """The key with its scheme: the one place where key material is shown, on request."""
    return {**signing_key.entry(), "Scheme": signing_key.scheme}


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _echo_details(issued: IssuedToken, *, show_all: bool) -> None:
    click.echo(f"ID: {issued.id}")
    click.echo(f"Name: {issued.name}")
    click.echo(f"Scheme: {issued.scheme}")
    click.echo(f"Audience(s): {issued.audience}")
    click.echo(f"Not Before: {issued.not_before.isoformat()}")
    click.echo(f"Expires On: {issued.expires.isoformat()}")
    click.echo(f"Issued On: {issued.issued.isoformat()}")
    claims = [f"{name}={value}" for name, value in issued.custom_claims.items()]
    for label, values in (
        ("Scopes", issued.scopes),
        ("Roles", issued.roles),
        ("Custom Claims", claims),
    ):
        if values or show_all:
            click.echo(f"{label}: {', '.join(values) or 'none'}")


def _echo_removed(records: list[dict[str, Any]], output: str, message: str) -> None:
    if output == "json":
        _echo_json(records)
    elif output == "token":
        for record in records:
            if isinstance(record.get("Token"), str):
                click.echo(record["Token"])
    else:
        click.echo(message)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return "\n".join(
        [line(headers), line(["-" * width for width in widths])] + [line(r) for r in rows]
    )
