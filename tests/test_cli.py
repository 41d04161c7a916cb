"""``flask user-jwts``: every command and output format, and every bad input changing nothing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import Result
from flask import Flask
from user_jwts_app import create_app

from flask_authflow.cli import user_jwts_cli
from flask_authflow.user_secrets import UserSecretsStore, UserSigningKey

TESTS = Path(__file__).resolve().parent
ISSUER = "dotnet-user-jwts"
AUDIENCES = ("http://localhost:5000", "http://127.0.0.1:5000")
SECRETS_ID = "user_jwts_app"

Snapshot = dict[str, tuple[int, int, int, bytes | None]]


@pytest.fixture
def secrets_root(tmp_path: Path) -> Path:
    return tmp_path / "usersecrets"


@pytest.fixture
def cli_app(secrets_root: Path) -> Flask:
    return create_app(USER_SECRETS_DIR=str(secrets_root))


@pytest.fixture
def store(secrets_root: Path) -> UserSecretsStore:
    return UserSecretsStore(secrets_root, SECRETS_ID)


def run(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=["user-jwts", *args], input=input)


def ok(app: Flask, *args: str, input: str | None = None) -> Result:
    result = run(app, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def create_token(app: Flask, *args: str) -> str:
    return ok(app, "create", "--output", "token", *args).stdout.strip()


def the_key(store: UserSecretsStore) -> UserSigningKey:
    [key] = store.signing_keys(ISSUER)
    return key


def verify(token: str, key: UserSigningKey, audience: str = AUDIENCES[0]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        key.value,
        algorithms=["HS256"],
        audience=audience,
        issuer=key.issuer,
        options={"verify_exp": False, "verify_nbf": False},
    )
    return claims


def snapshot(root: Path) -> Snapshot | None:
    """Every file and folder under ``root`` with its inode, mode, mtime and content."""
    if not root.exists():
        return None
    state: Snapshot = {}
    for path in sorted([root, *root.rglob("*")]):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else None
        state[str(path.relative_to(root))] = (info.st_ino, info.st_mode, info.st_mtime_ns, content)
    return state


def assert_one_line_error(result: Result) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""


def test_every_command_exists_and_takes_output() -> None:
    assert set(user_jwts_cli.commands) == {"create", "list", "print", "remove", "clear", "key"}
    for command in user_jwts_cli.commands.values():
        assert "--output" in {opt for param in command.params for opt in param.opts}


# -- create -------------------------------------------------------------------------


def test_create_prints_the_id_the_details_and_a_token_that_verifies(
    cli_app: Flask, store: UserSecretsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "dev")
    result = ok(cli_app, "create")

    lines = result.stdout.splitlines()
    token_id = store.token_records().popitem()[0]
    assert lines[0] == f"New JWT saved with ID '{token_id}'."
    assert "Name: dev" in lines and f"Audience(s): {', '.join(AUDIENCES)}" in lines
    assert lines[-1].startswith("Token: ")
    claims = verify(lines[-1].removeprefix("Token: "), the_key(store))
    assert (claims["sub"], claims["unique_name"], claims["jti"]) == ("dev", "dev", token_id)
    assert claims["aud"] == list(AUDIENCES) and claims["iss"] == ISSUER


def test_create_output_token_prints_only_the_token(
    cli_app: Flask, store: UserSecretsStore
) -> None:
    result = ok(cli_app, "create", "--output", "token")
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and result.stderr == ""
    assert jwt.get_unverified_header(token) == {
        "alg": "HS256",
        "typ": "JWT",
        "kid": the_key(store).id,
    }
    [record] = store.token_records().values()
    assert record["Token"] == token


def test_create_output_json_is_the_stored_record(cli_app: Flask, store: UserSecretsStore) -> None:
    printed = json.loads(ok(cli_app, "create", "-o", "json", "--name", "alice").stdout)
    assert store.token_records() == {printed["Id"]: printed}
    assert printed["Name"] == "alice" and printed["Scheme"] == "UserJwts"


def test_create_honours_every_claim_option(cli_app: Flask, store: UserSecretsStore) -> None:
    token = create_token(
        cli_app,
        "--name",
        "alice",
        "--audience",
        "https://a",
        "--audience",
        "https://b",
        "--issuer",
        "my-issuer",
        "--scheme",
        "Custom",
        "--scope",
        "read",
        "--scope",
        "write",
        "--role",
        "admin",
        "--claim",
        "team=blue",
        "--claim",
        "sig=a=b",
    )
    [key] = store.signing_keys("my-issuer")
    assert (key.scheme, key.issuer) == ("Custom", "my-issuer")
    claims = verify(token, key, audience="https://b")
    assert claims["aud"] == ["https://a", "https://b"]
    assert (claims["scope"], claims["role"]) == (["read", "write"], "admin")
    assert (claims["team"], claims["sig"]) == ("blue", "a=b")
    [record] = store.token_records().values()
    assert (record["Scopes"], record["Roles"], record["CustomClaims"]) == (
        ["read", "write"],
        ["admin"],
        {"team": "blue", "sig": "a=b"},
    )


def test_create_defaults_come_from_the_config(secrets_root: Path) -> None:
    app = create_app(
        USER_SECRETS_DIR=str(secrets_root),
        USER_JWTS_AUDIENCES="https://api.local",
        USER_JWTS_ISSUER="local-issuer",
        USER_SECRETS_ID="my-project",
    )
    token = create_token(app)
    [key] = UserSecretsStore(secrets_root, "my-project").signing_keys("local-issuer")
    claims = verify(token, key, audience="https://api.local")
    assert claims["aud"] == "https://api.local"
    lifetime = datetime.fromtimestamp(claims["exp"], timezone.utc) - datetime.fromtimestamp(
        claims["nbf"], timezone.utc
    )
    assert 181 <= lifetime.days <= 184, "six calendar months"
    assert claims["iat"] == claims["nbf"]


def test_create_lifetime_options(cli_app: Flask, store: UserSecretsStore) -> None:
    first = create_token(cli_app, "--not-before", "2030-01-01", "--valid-for", "12h")
    second = create_token(cli_app, "--expires-on", "2031-06-30T08:00:00+02:00")
    key = the_key(store)
    assert verify(first, key)["nbf"] == int(datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp())
    assert verify(first, key)["exp"] - verify(first, key)["nbf"] == 12 * 3600
    assert verify(second, key)["exp"] == int(
        datetime(2031, 6, 30, 6, tzinfo=timezone.utc).timestamp()
    )


def test_later_creates_reuse_the_key(cli_app: Flask, store: UserSecretsStore) -> None:
    tokens = [create_token(cli_app) for _ in range(3)]
    key = the_key(store)
    assert all(verify(token, key) for token in tokens)
    assert len(store.token_records()) == 3


def test_create_outside_development_warns_on_stderr_only(secrets_root: Path) -> None:
    app = create_app(
        USER_SECRETS_DIR=str(secrets_root),
        ENV="production",
        AUTH0_DOMAIN="tenant.example.com",
        AUTH0_AUDIENCE="https://api",
    )
    result = ok(app, "create", "--output", "token")
    assert result.stdout.count(".") == 2 and "\n" not in result.stdout.strip()
    assert "AUTHFLOW_ENV is 'production'" in result.stderr


# -- list, print --------------------------------------------------------------------


def test_list_on_an_empty_store_says_so_and_creates_nothing(
    cli_app: Flask, secrets_root: Path
) -> None:
    assert "No JWTs created yet." in ok(cli_app, "list").stdout
    assert json.loads(ok(cli_app, "list", "-o", "json").stdout) == []
    assert ok(cli_app, "list", "-o", "token").stdout == ""
    assert not secrets_root.exists()


def test_list_shows_a_table_and_tokens_on_request(cli_app: Flask) -> None:
    tokens = [create_token(cli_app, "--name", name) for name in ("alice", "bob")]
    plain = ok(cli_app, "list").stdout
    assert f"User secrets ID: {SECRETS_ID}" in plain
    assert "alice" in plain and "bob" in plain and tokens[0] not in plain
    assert plain.splitlines()[3].split() == [
        "ID",
        "Scheme",
        "Name",
        "Audience",
        "Issued",
        "On",
        "Expires",
        "On",
    ]
    assert all(token in ok(cli_app, "list", "--show-tokens").stdout for token in tokens)
    assert ok(cli_app, "list", "-o", "token").stdout.split() == tokens


def test_list_json_holds_tokens_only_with_show_tokens(cli_app: Flask) -> None:
    token = create_token(cli_app)
    [record] = json.loads(ok(cli_app, "list", "-o", "json").stdout)
    assert "Token" not in record and record["Scheme"] == "UserJwts"
    [record] = json.loads(ok(cli_app, "list", "-o", "json", "--show-tokens").stdout)
    assert record["Token"] == token


def test_print_shows_one_token(cli_app: Flask, store: UserSecretsStore) -> None:
    token = create_token(cli_app, "--scope", "read")
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]

    plain = ok(cli_app, "print", token_id).stdout.splitlines()
    assert plain[0] == f"Found JWT with ID '{token_id}'."
    assert "Scopes: read" in plain and not any(line.startswith("Roles") for line in plain)
    assert plain[-1] == f"Token: {token}"
    assert ok(cli_app, "print", token_id, "-o", "token").stdout == token + "\n"
    assert (
        json.loads(ok(cli_app, "print", token_id, "-o", "json").stdout)
        == store.token_records()[token_id]
    )


def test_print_show_all_adds_empty_fields_and_the_decoded_token(cli_app: Flask) -> None:
    token = create_token(cli_app)
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    lines = ok(cli_app, "print", token_id, "--show-all").stdout.splitlines()
    assert {"Scopes: none", "Roles: none", "Custom Claims: none"} <= set(lines)
    header = next(line for line in lines if line.startswith("Token Header: "))
    assert json.loads(header.removeprefix("Token Header: "))["alg"] == "HS256"
    assert lines[-1] == f"Compact Token: {token}"
    printed = json.loads(ok(cli_app, "print", token_id, "--show-all", "-o", "json").stdout)
    assert printed["Payload"]["jti"] == token_id and printed["Header"]["typ"] == "JWT"


# -- remove, clear ------------------------------------------------------------------


def test_remove_deletes_one_token(cli_app: Flask, store: UserSecretsStore) -> None:
    keep, gone = (create_token(cli_app) for _ in range(2))
    gone_id = jwt.decode(gone, options={"verify_signature": False})["jti"]
    assert ok(cli_app, "remove", gone_id).stdout == f"Deleted JWT with ID '{gone_id}'.\n"
    assert [r["Token"] for r in store.token_records().values()] == [keep]


def test_remove_json_and_token_outputs_show_what_was_removed(cli_app: Flask) -> None:
    first, second = (create_token(cli_app) for _ in range(2))
    first_id, second_id = (
        jwt.decode(t, options={"verify_signature": False})["jti"] for t in (first, second)
    )
    assert json.loads(ok(cli_app, "remove", first_id, "-o", "json").stdout)[0]["Token"] == first
    assert ok(cli_app, "remove", second_id, "-o", "token").stdout == second + "\n"


def test_clear_force_deletes_every_token_but_keeps_the_key(
    cli_app: Flask, store: UserSecretsStore
) -> None:
    tokens = [create_token(cli_app) for _ in range(2)]
    key = the_key(store)
    assert ok(cli_app, "clear", "--force", "-o", "token").stdout.split() == tokens
    assert store.token_records() == {}
    assert the_key(store) == key
    assert ok(cli_app, "clear", "--force").stdout == "There are no JWTs to delete.\n"


def test_clear_asks_first_and_a_no_changes_nothing(cli_app: Flask, secrets_root: Path) -> None:
    create_token(cli_app)
    before = snapshot(secrets_root)
    result = ok(cli_app, "clear", input="n\n")
    assert "Delete 1 JWT(s)" in result.stderr and "Canceled" in result.stderr
    assert snapshot(secrets_root) == before

    assert ok(cli_app, "clear", input="y\n").stdout == "Deleted 1 JWT(s).\n"
    assert snapshot(secrets_root) != before


# -- key ----------------------------------------------------------------------------


def test_key_before_any_token_says_how_to_get_one_and_creates_nothing(
    cli_app: Flask, secrets_root: Path
) -> None:
    assert "No signing key for issuer 'dotnet-user-jwts'" in ok(cli_app, "key").stdout
    assert ok(cli_app, "key", "-o", "json").stdout == "null\n"
    assert ok(cli_app, "key", "-o", "token").stdout == ""
    assert not secrets_root.exists()


def test_key_shows_the_key(cli_app: Flask, store: UserSecretsStore) -> None:
    create_token(cli_app)
    key = the_key(store)
    value = base64.b64encode(key.value).decode()
    assert f"Id: {key.id}" in ok(cli_app, "key").stdout.splitlines()
    assert ok(cli_app, "key", "-o", "token").stdout == value + "\n"
    assert json.loads(ok(cli_app, "key", "-o", "json").stdout) == {
        "Id": key.id,
        "Issuer": ISSUER,
        "Scheme": "UserJwts",
        "Value": value,
        "Length": 32,
    }


def test_key_reset_force_makes_old_tokens_fail(cli_app: Flask, store: UserSecretsStore) -> None:
    token = create_token(cli_app)
    old = the_key(store)
    printed = json.loads(ok(cli_app, "key", "--reset", "--force", "-o", "json").stdout)
    new = the_key(store)
    assert printed["Id"] == new.id != old.id
    with pytest.raises(jwt.InvalidSignatureError):
        verify(token, new)
    assert verify(create_token(cli_app), new)


def test_key_reset_asks_first_and_a_no_changes_nothing(
    cli_app: Flask, secrets_root: Path, store: UserSecretsStore
) -> None:
    create_token(cli_app)
    before = snapshot(secrets_root)
    result = ok(cli_app, "key", "--reset", input="n\n")
    assert "Reset the signing key" in result.stderr and "canceled" in result.stderr
    assert snapshot(secrets_root) == before
    old = the_key(store)
    ok(cli_app, "key", "--reset", input="y\n")
    assert the_key(store) != old


# -- bad input ----------------------------------------------------------------------

BAD_CALLS = [
    ("create", "--valid-for", "3x"),
    ("create", "--valid-for", "0d"),
    ("create", "--expires-on", "tomorrow"),
    ("create", "--not-before", "2025-02-30"),
    ("create", "--valid-for", "1d", "--expires-on", "2030-01-01"),
    ("create", "--not-before", "2030-01-02", "--expires-on", "2030-01-01"),
    ("create", "--claim", "novalue"),
    ("create", "--claim", "sub=mallory"),
    ("create", "--claim", "a=1", "--claim", "a=2"),
    ("create", "--scheme", "Bad:Scheme"),
    ("create", "--name", " "),
    ("create", "--audience", ""),
    ("create", "--output", "yaml"),
    ("create", "--bogus"),
    ("list", "--output", "yaml"),
    ("print", "nope1234"),
    ("print",),
    ("remove", "nope1234"),
    ("clear", "--output", "xml"),
    ("key", "--force"),
    ("key", "--scheme", ""),
    ("key", "--reset", "--force", "--output", "yaml"),
    ("frobnicate",),
]


@pytest.mark.parametrize("args", BAD_CALLS, ids=" ".join)
def test_bad_input_on_an_empty_store_fails_in_one_line_and_creates_nothing(
    cli_app: Flask, secrets_root: Path, args: tuple[str, ...]
) -> None:
    assert_one_line_error(run(cli_app, *args))
    assert not secrets_root.exists()


@pytest.mark.parametrize("args", BAD_CALLS, ids=" ".join)
def test_bad_input_on_a_used_store_fails_in_one_line_and_changes_nothing(
    cli_app: Flask, secrets_root: Path, args: tuple[str, ...]
) -> None:
    create_token(cli_app, "--scope", "read")
    before = snapshot(secrets_root)
    assert_one_line_error(run(cli_app, *args))
    assert snapshot(secrets_root) == before


def test_messages_name_the_problem(cli_app: Flask) -> None:
    assert "No JWT with ID 'nope1234'" in run(cli_app, "remove", "nope1234").stderr
    assert "--valid-for" in run(cli_app, "create", "--valid-for", "3x").stderr
    assert "'yaml' is not one of" in run(cli_app, "list", "-o", "yaml").stderr
    assert (
        "cannot be used together"
        in run(cli_app, "create", "--valid-for", "1d", "--expires-on", "2030-01-01").stderr
    )


def test_a_root_inside_the_source_tree_is_refused_naming_it() -> None:
    inside = TESTS / "secrets-must-not-be-created"
    result = run(create_app(USER_SECRETS_DIR=str(inside)), "create")
    assert_one_line_error(result)
    assert str(inside) in result.stderr and "inside the source tree" in result.stderr
    assert not inside.exists()


def test_a_configuration_error_is_one_line(secrets_root: Path) -> None:
    result = run(create_app(USER_SECRETS_DIR=str(secrets_root), ENV="staging"), "list")
    assert_one_line_error(result)
    assert "AUTHFLOW_ENV" in result.stderr


def test_a_corrupt_secrets_file_is_named_and_left_alone(
    cli_app: Flask, store: UserSecretsStore, secrets_root: Path
) -> None:
    store.folder.mkdir(parents=True)
    store.secrets_path.write_text('{"Authentication:Schemes:UserJwts:SigningKeys": [')
    before = snapshot(secrets_root)
    for args in (("create",), ("key",), ("key", "--reset", "--force")):
        result = run(cli_app, *args)
        assert_one_line_error(result)
        assert str(store.secrets_path) in result.stderr
    assert snapshot(secrets_root) == before


def test_a_corrupt_tokens_file_stops_create_before_a_key_is_written(
    cli_app: Flask, store: UserSecretsStore
) -> None:
    store.folder.mkdir(parents=True)
    store.tokens_path.write_text("{oops")
    result = run(cli_app, "create")
    assert_one_line_error(result)
    assert str(store.tokens_path) in result.stderr
    assert not store.secrets_path.exists()


def test_an_unreadable_record_is_named_and_can_still_be_removed(
    cli_app: Flask, store: UserSecretsStore
) -> None:
    store.add_token_record("bad00000", {"Id": "bad00000"})
    result = run(cli_app, "list")
    assert_one_line_error(result)
    assert "'bad00000'" in result.stderr and "remove bad00000" in result.stderr
    ok(cli_app, "remove", "bad00000")
    assert "No JWTs created yet." in ok(cli_app, "list").stdout


def test_a_symlinked_tokens_file_is_refused(
    cli_app: Flask, store: UserSecretsStore, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    store.folder.mkdir(parents=True)
    store.tokens_path.symlink_to(target)
    result = run(cli_app, "create")
    assert_one_line_error(result)
    assert "user-jwts.json is a symbolic link" in result.stderr
    assert target.read_text() == "{}" and not store.secrets_path.exists()


# -- as a real command --------------------------------------------------------------


def test_the_cli_runs_as_a_real_flask_subprocess(tmp_path: Path) -> None:
    root = tmp_path / "usersecrets"
    env = {
        **os.environ,
        "AUTHFLOW_USER_SECRETS_DIR": str(root),
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("FLASK_APP", None)
    command = [sys.executable, "-m", "flask", "--app", "user_jwts_app", "user-jwts"]

    created = subprocess.run(
        [*command, "create", "--output", "token", "--role", "admin"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == token + "\n"
    key = the_key(UserSecretsStore(root, SECRETS_ID))
    assert verify(token, key)["role"] == "admin"

    failed = subprocess.run(
        [*command, "create", "--valid-for", "soon"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("Error: --valid-for") and failed.stderr.count("\n") == 1
