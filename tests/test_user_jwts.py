"""Issuing development tokens: option parsing, claims, signing, and the stored record."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest

from flask_authflow.user_jwts import (
    IssuedToken,
    TokenOptionError,
    add_months,
    issue_token,
    new_token_id,
    parse_claims,
    parse_date,
    parse_valid_for,
    token_lifetime,
)
from flask_authflow.user_secrets import UserSigningKey

UTC = timezone.utc
KEY = UserSigningKey(id="ec444f0c", issuer="dotnet-user-jwts", scheme="UserJwts", value=b"k" * 32)
START = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
END = START + timedelta(days=1)


def token_with(**overrides: Any) -> tuple[str, dict[str, Any]]:
    arguments: dict[str, Any] = {
        "name": "alice",
        "audiences": ["http://localhost:5000"],
        "issuer": "dotnet-user-jwts",
        "not_before": START,
        "expires_at": END,
        "issued_at": START,
    }
    arguments.update(overrides)
    return issue_token(KEY, **arguments)


# -- --valid-for ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("1.5h", timedelta(minutes=90)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_valid_for_takes_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_valid_for(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "30", "d", "1w", "-1d", "0s", "0.0h", "1e3s", "30 d", "1d2h", "30D", "99999999999d"],
)
def test_other_durations_are_refused(text: str) -> None:
    with pytest.raises(TokenOptionError, match="--valid-for"):
        parse_valid_for(text)


# -- dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31T12:30:00", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31 12:30", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31T12:30:00Z", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31T14:30:00+02:00", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        (
            "2025-01-31T12:30:00.1234567+00:00",
            datetime(2025, 1, 31, 12, 30, 0, 123456, tzinfo=UTC),
        ),
    ],
)
def test_dates_are_iso_8601_and_utc_without_an_offset(text: str, expected: datetime) -> None:
    parsed = parse_date(text, "--expires-on")
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "tomorrow", "2025-02-30", "31/01/2025", "2025-01-31T25:00"])
def test_other_dates_are_refused_naming_the_option(text: str) -> None:
    with pytest.raises(TokenOptionError, match="--not-before must be an ISO 8601 date"):
        parse_date(text, "--not-before")


# -- lifetime ---------------------------------------------------------------------


def test_the_default_lifetime_is_six_months_from_now() -> None:
    assert token_lifetime(now=START) == (START, datetime(2025, 7, 31, 12, 0, tzinfo=UTC))


def test_months_are_calendar_months_clamped_to_the_month_end() -> None:
    assert add_months(datetime(2025, 8, 31, tzinfo=UTC), 6) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2023, 8, 31, tzinfo=UTC), 6) == datetime(2024, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2025, 11, 15, tzinfo=UTC), 2) == datetime(2026, 1, 15, tzinfo=UTC)


def test_valid_for_counts_from_not_before() -> None:
    start, end = token_lifetime(now=START, not_before="2030-01-01", valid_for="12h")
    assert (start, end) == (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, 12, tzinfo=UTC))


def test_expires_on_sets_the_end_and_may_lie_in_the_past() -> None:
    start, end = token_lifetime(now=START, not_before="2020-01-01", expires_on="2020-01-02")
    assert end == datetime(2020, 1, 2, tzinfo=UTC) and start < end


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expires_on": "2030-01-01", "valid_for": "1d"}, "cannot be used together"),
        ({"expires_on": "2020-01-01"}, "must expire after it becomes valid"),
        ({"not_before": "2030-01-02", "expires_on": "2030-01-01"}, "must expire after"),
        ({"not_before": "9999-12-31"}, "after the year 9999"),
        ({"not_before": "soon"}, "--not-before"),
    ],
)
def test_inconsistent_lifetimes_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(TokenOptionError, match=message):
        token_lifetime(now=START, **options)


# -- --claim ----------------------------------------------------------------------


def test_claims_are_name_value_pairs() -> None:
    assert parse_claims(["team=blue", "sig=a=b==", "empty="]) == {
        "team": "blue",
        "sig": "a=b==",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["novalue"], "must look like name=value"),
        (["=value"], "must look like name=value"),
        (["sub=mallory"], "cannot set 'sub'"),
        (["exp=0"], "cannot set 'exp'"),
        (["a=1", "a=2"], "more than once"),
    ],
)
def test_bad_claims_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(TokenOptionError, match=message):
        parse_claims(items)


# -- the token --------------------------------------------------------------------


def test_the_token_is_hs256_with_typ_and_kid() -> None:
    token, _ = token_with()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": KEY.id}


def test_the_token_verifies_with_the_key_and_holds_the_claims() -> None:
    token, claims = token_with(jti="0123abcd")
    verified = jwt.decode(
        token,
        KEY.value,
        algorithms=["HS256"],
        audience="http://localhost:5000",
        issuer="dotnet-user-jwts",
        options={"verify_exp": False, "verify_nbf": False},
    )
    assert (
        verified
        == claims
        == {
            "sub": "alice",
            "unique_name": "alice",
            "jti": "0123abcd",
            "aud": "http://localhost:5000",
            "iss": "dotnet-user-jwts",
            "nbf": int(START.timestamp()),
            "exp": int(END.timestamp()),
            "iat": int(START.timestamp()),
        }
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, b"x" * 32, algorithms=["HS256"], options={"verify_aud": False})


def test_one_value_is_a_string_several_an_array() -> None:
    _, one = token_with(audiences=["a"], scopes=["read"], roles=["admin"])
    _, several = token_with(audiences=["a", "b", "a"], scopes=["read", "write"], roles=["x", "y"])
    assert (one["aud"], one["scope"], one["role"]) == ("a", "read", "admin")
    assert (several["aud"], several["scope"], several["role"]) == (
        ["a", "b"],
        ["read", "write"],
        ["x", "y"],
    )


def test_no_scope_or_role_claim_without_values_and_custom_claims_come_last() -> None:
    _, claims = token_with(claims={"team": "blue", "aud": "override"})
    assert "scope" not in claims and "role" not in claims
    assert claims["team"] == "blue"
    assert claims["aud"] == "override", "a test may override any claim"


def test_the_jti_is_eight_hex_digits_and_fresh() -> None:
    ids = {token_with()[1]["jti"] for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) == 8 and int(i, 16) >= 0 for i in ids)
    taken = {new_token_id() for _ in range(5)}
    assert new_token_id(taken) not in taken


@pytest.mark.parametrize(
    "overrides",
    [
        {"audiences": []},
        {"audiences": [""]},
        {"name": ""},
        {"issuer": ""},
        {"not_before": datetime(2025, 1, 1)},
    ],
)
def test_incomplete_tokens_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        token_with(**overrides)


# -- the record -------------------------------------------------------------------


def issued_token(**overrides: Any) -> IssuedToken:
    arguments: dict[str, Any] = {
        "audiences": ["a", "b"],
        "scopes": ["read"],
        "roles": ["admin", "ops"],
        "claims": {"team": "blue"},
        "jti": "0123abcd",
    }
    arguments.update(overrides)
    token, claims = token_with(**arguments)
    return IssuedToken.from_claims(KEY.scheme, token, claims, arguments["claims"])


def test_the_record_has_the_fields_dotnet_writes() -> None:
    issued = issued_token()
    assert issued.to_record() == {
        "Id": "0123abcd",
        "Scheme": "UserJwts",
        "Name": "alice",
        "Audience": "a, b",
        "NotBefore": "2025-01-31T12:00:00+00:00",
        "Expires": "2025-02-01T12:00:00+00:00",
        "Issued": "2025-01-31T12:00:00+00:00",
        "Token": issued.token,
        "Scopes": ["read"],
        "Roles": ["admin", "ops"],
        "CustomClaims": {"team": "blue"},
    }
    assert (
        jwt.decode(
            issued.token,
            KEY.value,
            algorithms=["HS256"],
            audience="a",
            options={"verify_exp": False},
        )["jti"]
        == "0123abcd"
    )


def test_a_record_reads_back_as_it_was_written() -> None:
    issued = issued_token()
    assert IssuedToken.from_record(issued.to_record()) == issued


def test_a_record_written_by_dotnet_is_read() -> None:
    record = {
        "Id": "d2b8240f",
        "Scheme": "Bearer",
        "Name": "bob",
        "Audience": "https://localhost:7251",
        "NotBefore": "2024-04-01T12:00:00+00:00",
        "Expires": "2024-10-01T12:00:00.1234567+00:00",
        "Issued": "2024-04-01T12:00:00+00:00",
        "Token": "a.b.c",
        "Scopes": None,
        "Roles": None,
        "CustomClaims": None,
    }
    issued = IssuedToken.from_record(record)
    assert (issued.scheme, issued.scopes, issued.roles, dict(issued.custom_claims)) == (
        "Bearer",
        (),
        (),
        {},
    )
    assert issued.expires == datetime(2024, 10, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Id": None}, "Id"),
        ({"Token": 3}, "Token"),
        ({"Expires": "soon"}, "Expires"),
        ({"Scopes": "read"}, "Scopes"),
        ({"CustomClaims": {"a": 1}}, "CustomClaims"),
    ],
)
def test_a_damaged_record_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    record = {**issued_token().to_record(), **change}
    with pytest.raises(ValueError, match=field):
        IssuedToken.from_record(record)
