"""The user-secrets store: .NET layout, safe writes, refusals, and the key watcher."""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Clock

from flask_authflow.schemes import DevelopmentKeys
from flask_authflow.user_secrets import (
    SigningKeyWatcher,
    UserSecretsError,
    UserSecretsStore,
    UserSigningKey,
    ensure_outside_source_tree,
)

ISSUER = "dotnet-user-jwts"
USER_JWTS_KEYS = "Authentication:Schemes:UserJwts:SigningKeys"
BEARER_KEYS = "Authentication:Schemes:Bearer:SigningKeys"
SECRET_VALUE = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def store(tmp_path: Path) -> UserSecretsStore:
    return UserSecretsStore(tmp_path / "usersecrets", "my-app")


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """A permissive umask, so that the modes seen are the ones the store sets itself."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def write_json(path: Path, document: Any, mode: int = 0o644) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(document).encode()
    path.write_bytes(data)
    path.chmod(mode)
    return data


def key_entry(
    key_id: str = "ec444f0c", issuer: str = ISSUER, value: str = SECRET_VALUE
) -> dict[str, Any]:
    return {"Id": key_id, "Issuer": issuer, "Value": value, "Length": 32}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- layout and modes ---------------------------------------------------------------


def test_constructing_a_store_touches_nothing(tmp_path: Path) -> None:
    store = UserSecretsStore(tmp_path / "root", "app")
    assert store.secrets_path == tmp_path / "root" / "app" / "secrets.json"
    assert store.tokens_path == tmp_path / "root" / "app" / "user-jwts.json"
    assert not (tmp_path / "root").exists()


def test_reading_an_absent_store_finds_nothing_and_creates_nothing(
    store: UserSecretsStore,
) -> None:
    assert store.signing_keys(ISSUER) == ()
    assert store.find_key("UserJwts", ISSUER) is None
    assert store.token_records() == {}
    assert store.remove_token_record("abcd1234") is None
    assert store.clear_token_records() == {}
    assert store.file_state() is None
    assert not store.root.exists()


def test_a_new_key_is_written_in_the_dotnet_layout(store: UserSecretsStore) -> None:
    key = store.get_or_create_key("UserJwts", ISSUER)

    document = json.loads(store.secrets_path.read_text())
    assert list(document) == [USER_JWTS_KEYS]
    [entry] = document[USER_JWTS_KEYS]
    assert entry == {"Id": key.id, "Issuer": ISSUER, "Value": entry["Value"], "Length": 32}
    assert len(key.id) == 8 and int(key.id, 16) >= 0
    assert base64.b64decode(entry["Value"]) == key.value and len(key.value) == 32
    assert (key.scheme, key.issuer) == ("UserJwts", ISSUER)


def test_the_existing_key_is_reused(store: UserSecretsStore) -> None:
    first = store.get_or_create_key("UserJwts", ISSUER)
    assert store.get_or_create_key("UserJwts", ISSUER) == first
    assert len(json.loads(store.secrets_path.read_text())[USER_JWTS_KEYS]) == 1


def test_keys_are_separate_per_scheme_and_issuer(store: UserSecretsStore) -> None:
    keys = {
        store.get_or_create_key(scheme, issuer)
        for scheme in ("UserJwts", "Other")
        for issuer in (ISSUER, "another-issuer")
    }
    assert len({key.value for key in keys}) == 4
    assert {key.id for key in store.signing_keys(ISSUER)} == {
        key.id for key in keys if key.issuer == ISSUER
    }


def test_written_files_are_0600_in_folders_0700_whatever_the_umask(
    store: UserSecretsStore, umask_zero: None
) -> None:
    store.get_or_create_key("UserJwts", ISSUER)
    store.add_token_record("abcd1234", {"Id": "abcd1234"})

    assert mode_of(store.root) == 0o700
    assert mode_of(store.folder) == 0o700
    written = sorted(store.folder.iterdir())
    assert {store.secrets_path, store.tokens_path} <= set(written)
    for path in written:
        assert mode_of(path) == 0o600, path


def test_an_existing_project_folder_is_tightened_on_write(store: UserSecretsStore) -> None:
    write_json(store.secrets_path, {"Other": "x"})
    store.folder.chmod(0o755)
    store.get_or_create_key("UserJwts", ISSUER)
    assert mode_of(store.folder) == 0o700
    assert mode_of(store.secrets_path) == 0o600


def test_other_secrets_and_other_issuers_keys_are_preserved(store: UserSecretsStore) -> None:
    foreign = key_entry("aaaaaaaa", issuer="someone-else")
    write_json(
        store.secrets_path,
        {"ConnectionStrings:Db": "Server=x", USER_JWTS_KEYS: [foreign], "Nested": {"a": [1, 2]}},
    )
    store.get_or_create_key("UserJwts", ISSUER)
    store.reset_key("UserJwts", ISSUER)

    document = json.loads(store.secrets_path.read_text())
    assert document["ConnectionStrings:Db"] == "Server=x"
    assert document["Nested"] == {"a": [1, 2]}
    assert document[USER_JWTS_KEYS][0] == foreign
    assert [e["Issuer"] for e in document[USER_JWTS_KEYS]] == ["someone-else", ISSUER]


def test_reset_replaces_the_key_of_that_issuer(store: UserSecretsStore) -> None:
    old = store.get_or_create_key("UserJwts", ISSUER)
    new = store.reset_key("UserJwts", ISSUER)
    assert new.id != old.id and new.value != old.value
    assert store.signing_keys(ISSUER) == (new,)


def test_writes_replace_the_file_by_rename(store: UserSecretsStore) -> None:
    store.get_or_create_key("UserJwts", ISSUER)
    before = store.file_state()
    store.reset_key("UserJwts", ISSUER)
    after = store.file_state()
    assert before is not None and after is not None
    assert before[2] != after[2], "a new inode means the file was renamed into place"
    assert sorted(p.name for p in store.folder.iterdir()) == [".user-jwts.lock", "secrets.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    store: UserSecretsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.get_or_create_key("UserJwts", ISSUER)
    before = store.secrets_path.read_bytes()

    def refuse(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(UserSecretsError, match="secrets.json"):
        store.reset_key("UserJwts", ISSUER)
    assert store.secrets_path.read_bytes() == before
    assert sorted(p.name for p in store.folder.iterdir()) == [".user-jwts.lock", "secrets.json"]


def test_the_file_and_its_folder_are_fsynced(
    store: UserSecretsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    if not Path("/proc/self/fd").exists():
        pytest.skip("needs /proc to name the descriptors")
    monkeypatch.setattr(os, "fsync", recording_fsync)
    store.get_or_create_key("UserJwts", ISSUER)
    assert any(".secrets.json." in name for name in synced)  # the temporary, before the rename
    assert str(store.folder) in synced


# -- reading what .NET wrote -------------------------------------------------------


def test_a_hand_written_dotnet_store_is_read_as_it_is(store: UserSecretsStore) -> None:
    other = base64.b64encode(b"k" * 32).decode()
    data = write_json(
        store.secrets_path,
        {
            BEARER_KEYS: [key_entry("ec444f0c"), key_entry("0badc0de", issuer="x", value=other)],
            "Authentication:Schemes:Api:SigningKeys": [key_entry("5eed5eed", value=other)],
        },
        mode=0o644,
    )
    store.folder.chmod(0o755)

    keys = store.signing_keys(ISSUER)

    assert keys == (
        UserSigningKey(id="ec444f0c", issuer=ISSUER, scheme="Bearer", value=bytes(range(32))),
        UserSigningKey(id="5eed5eed", issuer=ISSUER, scheme="Api", value=b"k" * 32),
    )
    assert store.secrets_path.read_bytes() == data
    assert mode_of(store.secrets_path) == 0o644 and mode_of(store.folder) == 0o755


def test_a_byte_order_mark_and_an_empty_file_are_accepted(store: UserSecretsStore) -> None:
    store.folder.mkdir(parents=True)
    store.secrets_path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({BEARER_KEYS: [key_entry()]}).encode()
    )
    assert [key.id for key in store.signing_keys(ISSUER)] == ["ec444f0c"]
    store.tokens_path.write_bytes(b"")
    assert store.token_records() == {}


CORRUPT = {
    "not JSON": b'{"a": ',
    "not an object": b"[]",
    "NaN": b'{"a": NaN}',
    "duplicate member": b'{"a": 1, "a": 2}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "not UTF-8": b'{"a": "\xff"}',
    "keys not a list": json.dumps({USER_JWTS_KEYS: {"Id": "x"}}).encode(),
    "entry not an object": json.dumps({USER_JWTS_KEYS: ["x"]}).encode(),
    "no Id": json.dumps({USER_JWTS_KEYS: [{"Issuer": ISSUER, "Value": SECRET_VALUE}]}).encode(),
    "Value not base64": json.dumps({USER_JWTS_KEYS: [key_entry(value="not base64!")]}).encode(),
    "Length mismatch": json.dumps({USER_JWTS_KEYS: [{**key_entry(), "Length": 16}]}).encode(),
    "key too short": json.dumps(
        {USER_JWTS_KEYS: [key_entry(value=base64.b64encode(b"short").decode())]}
    ).encode(),
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_secrets_file_is_refused_naming_it_and_left_untouched(
    store: UserSecretsStore, content: bytes
) -> None:
    store.folder.mkdir(parents=True)
    store.secrets_path.write_bytes(content)

    for operation in (
        lambda: store.signing_keys(ISSUER),
        lambda: store.get_or_create_key("UserJwts", ISSUER),
        lambda: store.reset_key("UserJwts", ISSUER),
    ):
        with pytest.raises(UserSecretsError) as caught:
            operation()
        message = str(caught.value)
        assert str(store.secrets_path) in message
        assert SECRET_VALUE not in message and "\n" not in message
    assert store.secrets_path.read_bytes() == content


def test_a_corrupt_tokens_file_is_refused_and_left_untouched(store: UserSecretsStore) -> None:
    store.folder.mkdir(parents=True)
    for content in (b"{", b'{"abcd1234": "not an object"}'):
        store.tokens_path.write_bytes(content)
        for operation in (
            store.token_records,
            lambda: store.add_token_record("x", {}),
            lambda: store.remove_token_record("abcd1234"),
            store.clear_token_records,
        ):
            with pytest.raises(UserSecretsError, match="user-jwts.json"):
                operation()
        assert store.tokens_path.read_bytes() == content


@pytest.mark.parametrize("name", ["secrets.json", "user-jwts.json"])
def test_a_symlinked_file_is_refused_and_its_target_untouched(
    store: UserSecretsStore, tmp_path: Path, name: str
) -> None:
    target = tmp_path / "elsewhere.json"
    data = write_json(target, {})
    store.folder.mkdir(parents=True)
    (store.folder / name).symlink_to(target)

    operations: dict[str, list[Callable[[], object]]] = {
        "secrets.json": [
            lambda: store.signing_keys(ISSUER),
            lambda: store.get_or_create_key("UserJwts", ISSUER),
        ],
        "user-jwts.json": [store.token_records, lambda: store.add_token_record("x", {})],
    }
    for operation in operations[name]:
        with pytest.raises(UserSecretsError, match=f"{name} is a symbolic link"):
            operation()
    assert (store.folder / name).is_symlink()
    assert target.read_bytes() == data


# -- issued tokens ------------------------------------------------------------------


def test_token_records_are_added_removed_and_cleared(store: UserSecretsStore) -> None:
    store.add_token_record("aaaa0001", {"Id": "aaaa0001", "Extra": [1]})
    store.add_token_record("aaaa0002", {"Id": "aaaa0002"})
    with pytest.raises(UserSecretsError, match="aaaa0001"):
        store.add_token_record("aaaa0001", {"Id": "other"})

    assert list(store.token_records()) == ["aaaa0001", "aaaa0002"]
    assert store.remove_token_record("aaaa0001") == {"Id": "aaaa0001", "Extra": [1]}
    assert store.remove_token_record("aaaa0001") is None
    assert store.clear_token_records() == {"aaaa0002": {"Id": "aaaa0002"}}
    assert json.loads(store.tokens_path.read_text()) == {}


# -- concurrency --------------------------------------------------------------------


def _create_key(root: str, barrier: Any) -> tuple[str, bytes]:
    barrier.wait()
    key = UserSecretsStore(Path(root), "my-app").get_or_create_key("UserJwts", ISSUER)
    return key.id, key.value


def _add_records(root: str, barrier: Any, worker: int) -> None:
    store = UserSecretsStore(Path(root), "my-app")
    barrier.wait()
    for n in range(10):
        store.add_token_record(f"{worker:04x}{n:04x}", {"worker": worker})


PROCESSES = 6


def test_concurrent_creates_from_several_processes_make_one_key(store: UserSecretsStore) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        barrier = manager.Barrier(PROCESSES)
        keys = pool.starmap(_create_key, [(str(store.root), barrier)] * PROCESSES)

    assert len(set(keys)) == 1
    assert len(json.loads(store.secrets_path.read_text())[USER_JWTS_KEYS]) == 1


def test_concurrent_writers_lose_nothing(store: UserSecretsStore) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        barrier = manager.Barrier(PROCESSES)
        pool.starmap(_add_records, [(str(store.root), barrier, n) for n in range(PROCESSES)])

    assert len(store.token_records()) == PROCESSES * 10


# -- the source tree ----------------------------------------------------------------


def test_a_root_inside_the_app_or_its_project_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    app_root = project / "src" / "app"
    app_root.mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    (tmp_path / "link").symlink_to(project)

    for root in (app_root / "secrets", project / ".secrets", tmp_path / "link" / "x", project):
        with pytest.raises(UserSecretsError, match="is inside the source tree") as caught:
            ensure_outside_source_tree(root, app_root)
        assert str(root) in str(caught.value)
    ensure_outside_source_tree(tmp_path / "usersecrets", app_root)
    ensure_outside_source_tree(str(tmp_path / "project-secrets"), str(app_root))


def test_without_a_project_marker_only_the_app_root_counts(tmp_path: Path) -> None:
    app_root = tmp_path / "plain" / "app"
    app_root.mkdir(parents=True)
    with pytest.raises(UserSecretsError):
        ensure_outside_source_tree(app_root / "s", app_root)
    ensure_outside_source_tree(tmp_path / "plain" / "s", app_root)


# -- the watcher --------------------------------------------------------------------


class CountingStore(UserSecretsStore):
    """Counts the stats and reads the watcher makes."""

    stats = 0
    reads = 0

    def file_state(self) -> tuple[int, int, int] | None:
        self.stats += 1
        return super().file_state()

    def signing_keys(self, issuer: str) -> tuple[UserSigningKey, ...]:
        self.reads += 1
        return super().signing_keys(issuer)


@pytest.fixture
def counting_store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "usersecrets", "my-app")


def test_the_watcher_stats_at_most_once_per_interval(counting_store: CountingStore) -> None:
    key = counting_store.get_or_create_key("UserJwts", ISSUER)
    clock = Clock(1000.0)
    watcher = SigningKeyWatcher(counting_store, ISSUER, clock=clock, interval=1.0)

    for _ in range(50):
        assert watcher.current()[0] == (key,)
    assert (counting_store.stats, counting_store.reads) == (1, 1)

    clock.now += 0.999
    watcher.current()
    assert counting_store.stats == 1
    clock.now += 0.001
    watcher.current()
    assert (counting_store.stats, counting_store.reads) == (2, 1), "unchanged file: no re-read"


def test_check_due_says_when_keys_would_look_at_the_file(counting_store: CountingStore) -> None:
    counting_store.get_or_create_key("UserJwts", ISSUER)
    clock = Clock(1000.0)
    watcher = SigningKeyWatcher(counting_store, ISSUER, clock=clock, interval=1.0)
    assert watcher.check_due(clock.now), "never checked yet"
    watcher.current()
    assert not watcher.check_due(clock.now + 0.999)
    assert watcher.check_due(clock.now + 1.0)
    assert counting_store.stats == 1, "check_due itself never looks at the file"


def test_development_keys_are_fresh_only_between_checks(counting_store: CountingStore) -> None:
    counting_store.get_or_create_key("UserJwts", ISSUER)
    clock = Clock(1000.0)
    keys = DevelopmentKeys(SigningKeyWatcher(counting_store, ISSUER, clock=clock))
    assert keys.fresh_key_set(clock.now) is None, "nothing read yet"
    current = keys.key_set(None)
    assert keys.fresh_key_set(clock.now + 0.5) is current
    assert keys.fresh_key_set(clock.now + 1.0) is None, "a check is due: ask key_set()"

    counting_store.reset_key("UserJwts", ISSUER)
    clock.now += 1.0
    keys._watcher.current()  # the watcher sees the reset before the key source rebuilds
    assert keys.fresh_key_set(clock.now) is None, "keys changed since the last key set"
    assert keys.key_set(None).version > current.version
    assert keys.fresh_key_set(clock.now) is not None
    assert counting_store.stats == 2


def test_the_watcher_picks_up_a_reset_after_the_interval(counting_store: CountingStore) -> None:
    old = counting_store.get_or_create_key("UserJwts", ISSUER)
    clock = Clock(1000.0)
    watcher = SigningKeyWatcher(counting_store, ISSUER, clock=clock)
    assert watcher.current()[0] == (old,)
    version = watcher.version

    new = counting_store.reset_key("UserJwts", ISSUER)
    assert watcher.current()[0] == (old,), "within the interval the last keys stand"
    clock.now += 1.0
    assert watcher.current()[0] == (new,)
    assert watcher.version == version + 1


def test_the_watcher_sees_the_first_key_appear(counting_store: CountingStore) -> None:
    clock = Clock(1000.0)
    watcher = SigningKeyWatcher(counting_store, ISSUER, clock=clock)
    assert watcher.current()[0] == ()
    assert watcher.version == 0

    key = counting_store.get_or_create_key("UserJwts", ISSUER)
    clock.now += 5
    assert watcher.current()[0] == (key,)
    assert watcher.version == 1


def test_the_version_stays_when_the_file_changes_but_not_the_keys(
    counting_store: CountingStore,
) -> None:
    counting_store.get_or_create_key("UserJwts", ISSUER)
    clock = Clock(1000.0)
    watcher = SigningKeyWatcher(counting_store, ISSUER, clock=clock)
    watcher.current()
    version = watcher.version

    counting_store.get_or_create_key("UserJwts", "another-issuer")
    clock.now += 1
    watcher.current()
    assert counting_store.reads == 2
    assert watcher.version == version


def test_a_corrupt_file_keeps_the_last_good_keys_and_is_logged_once(
    counting_store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    key = counting_store.get_or_create_key("UserJwts", ISSUER)
    value = base64.b64encode(key.value).decode()
    clock = Clock(1000.0)
    watcher = SigningKeyWatcher(counting_store, ISSUER, clock=clock)
    watcher.current()
    version = watcher.version

    corrupt = json.dumps({USER_JWTS_KEYS: [{**key_entry(key.id, value=value), "Length": 8}]})
    counting_store.secrets_path.write_text(corrupt)
    with caplog.at_level(logging.WARNING, logger="flask_authflow.user_secrets"):
        for _ in range(3):
            clock.now += 1
            assert watcher.current()[0] == (key,)

    assert watcher.version == version
    assert len(caplog.records) == 1
    assert str(counting_store.secrets_path) in caplog.text
    assert value not in caplog.text
    assert counting_store.secrets_path.read_text() == corrupt
