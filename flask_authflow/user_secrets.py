"""The per-user secrets store that holds the signing keys of local development tokens.

The layout is the one .NET uses for user secrets, so a store written by
``dotnet user-jwts`` is read as it is::

    <root>/<secrets_id>/secrets.json      {"Authentication:Schemes:<scheme>:SigningKeys": [...]}
    <root>/<secrets_id>/user-jwts.json    {"<token id>": {...record...}}

This module knows nothing about Flask: the CLI and the UserJwts scheme are thin layers
on top of it. Messages of :class:`UserSecretsError` name the file concerned and never
contain key material or other secret values.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._secret_files import UserSecretsError, exclusive_lock, read_json_object, write_json_object

__all__ = [
    "SigningKeyWatcher",
    "UserSecretsError",
    "UserSecretsStore",
    "UserSigningKey",
    "ensure_outside_source_tree",
    "signing_keys_property",
]

logger = logging.getLogger(__name__)

SECRETS_FILE = "secrets.json"
TOKENS_FILE = "user-jwts.json"
#: Taken with ``flock`` around every read-modify-write.
LOCK_FILE = ".user-jwts.lock"

_KEYS_PREFIX = "Authentication:Schemes:"
_KEYS_SUFFIX = ":SigningKeys"
KEY_LENGTH = 32
#: HS256 keys shorter than the hash output are refused, as .NET's IdentityModel does.
_MIN_KEY_LENGTH = 32
_PROJECT_MARKERS = (".git", "setup.py", "pyproject.toml")


@dataclass(frozen=True)
class UserSigningKey:
    """One HS256 signing key of the store."""

    #: The ``Id`` of the entry, also written as ``kid`` into the tokens it signs.
    id: str
    issuer: str
    #: The authentication scheme the key is filed under (``UserJwts``, ``Bearer``...).
    scheme: str
    #: The decoded bytes of ``Value``. Kept out of ``repr`` so it never reaches a log.
    value: bytes = field(repr=False)

    def entry(self) -> dict[str, Any]:
        """The key as ``secrets.json`` lists it, ``Value`` included: handle with care."""
        return {
            "Id": self.id,
            "Issuer": self.issuer,
            "Value": base64.b64encode(self.value).decode("ascii"),
            "Length": len(self.value),
        }


def signing_keys_property(scheme: str) -> str:
    """The ``secrets.json`` property that lists the signing keys of ``scheme``.

    :raises ValueError: when ``scheme`` is empty or holds a ``:``, which would make a
        different configuration path.
    """
    if not scheme or ":" in scheme or scheme.strip() != scheme:
        raise ValueError(f"A scheme name must be a non-empty word without ':', not {scheme!r}.")
    return f"{_KEYS_PREFIX}{scheme}{_KEYS_SUFFIX}"


def check_secrets_id(secrets_id: object) -> None:
    """Refuse a user-secrets ID that is not a plain folder name.

    :raises ValueError: for anything but a non-empty string without path separators
        that is not ``.`` or ``..``.
    """
    if (
        not isinstance(secrets_id, str)
        or secrets_id in ("", ".", "..")
        or "/" in secrets_id
        or "\\" in secrets_id
    ):
        raise ValueError(f"A user-secrets ID must be a plain folder name, not {secrets_id!r}.")


class UserSecretsStore:
    """The secrets of one project, ``<root>/<secrets_id>``.

    Creating the object does not touch the disk. Reading accepts any file mode (.NET
    writes 0644); writing replaces files atomically, with mode 0600 in a folder of mode
    0700, while holding a file lock so that concurrent writers lose nothing.

    :param root: the store's root (``AUTHFLOW_USER_SECRETS_DIR``); ``~`` is expanded.
    :param secrets_id: the project's folder name (``AUTHFLOW_USER_SECRETS_ID``).
    """

    def __init__(self, root: str | os.PathLike[str], secrets_id: str) -> None:
        check_secrets_id(secrets_id)
        self.root = Path(root).expanduser()
        self.folder = self.root / secrets_id
        self.secrets_path = self.folder / SECRETS_FILE
        self.tokens_path = self.folder / TOKENS_FILE
        self._lock_path = self.folder / LOCK_FILE

    # -- signing keys -------------------------------------------------------------

    def signing_keys(self, issuer: str) -> tuple[UserSigningKey, ...]:
        """Every key whose ``Issuer`` is ``issuer``, from every scheme's list.

        ``dotnet user-jwts`` files its keys under ``Bearer`` by default, so the lists of
        all schemes are searched. A missing ``secrets.json`` holds no keys.
        """
        document = read_json_object(self.secrets_path)
        return tuple(
            key
            for prop, scheme in _key_properties(document)
            for key in _keys_of(self.secrets_path, document, prop, scheme, issuer)
        )

    def find_key(self, scheme: str, issuer: str) -> UserSigningKey | None:
        """The key filed under ``scheme`` for ``issuer``, or ``None``."""
        prop = signing_keys_property(scheme)
        document = read_json_object(self.secrets_path)
        return next(iter(_keys_of(self.secrets_path, document, prop, scheme, issuer)), None)

    def get_or_create_key(self, scheme: str, issuer: str) -> UserSigningKey:
        """The key for (``scheme``, ``issuer``), created if there is none.

        Looking and creating happen under the lock, so concurrent calls all return the
        same key and the file never holds a second one.
        """
        # Looked up first without the lock: an existing key (or a corrupt file) then
        # leaves the folder exactly as it was.
        found = self.find_key(scheme, issuer)
        if found is not None:
            return found
        prop = signing_keys_property(scheme)
        with exclusive_lock(self._lock_path):
            document = read_json_object(self.secrets_path)
            existing = _keys_of(self.secrets_path, document, prop, scheme, issuer)
            if existing:
                return existing[0]
            entries = _key_list(self.secrets_path, document, prop)
            key, entry = _new_key(scheme, issuer)
            document[prop] = [*entries, entry]
            write_json_object(self.secrets_path, document)
            return key

    def reset_key(self, scheme: str, issuer: str) -> UserSigningKey:
        """Replace the key for (``scheme``, ``issuer``) with a new one.

        Every token signed with the old key stops verifying. Keys of other issuers and
        every other property of ``secrets.json`` are kept.
        """
        prop = signing_keys_property(scheme)
        # A corrupt file or entry is refused, not silently replaced, before the lock
        # file is created.
        self.find_key(scheme, issuer)
        with exclusive_lock(self._lock_path):
            document = read_json_object(self.secrets_path)
            _keys_of(self.secrets_path, document, prop, scheme, issuer)  # again, now locked
            entries = _key_list(self.secrets_path, document, prop)
            kept = [e for e in entries if e.get("Issuer") != issuer]
            key, entry = _new_key(scheme, issuer)
            document[prop] = [*kept, entry]
            write_json_object(self.secrets_path, document)
            return key

    def file_state(self) -> tuple[int, int, int] | None:
        """``(st_mtime_ns, st_size, st_ino)`` of ``secrets.json``, ``None`` when absent.

        Files are replaced by rename, so the inode changes on every write even when the
        time stamp's resolution is coarse.
        """
        try:
            info = os.stat(self.secrets_path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise UserSecretsError(f"Cannot read {self.secrets_path}: {exc.strerror}.") from exc
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    # -- issued tokens ------------------------------------------------------------

    def token_records(self) -> dict[str, dict[str, Any]]:
        """The records of ``user-jwts.json`` by token id (empty when the file is absent)."""
        document = read_json_object(self.tokens_path)
        for token_id, record in document.items():
            if not isinstance(record, dict):
                raise UserSecretsError(
                    f"{self.tokens_path} is corrupt: the entry {token_id!r} is not an object."
                )
        return document

    def add_token_record(self, token_id: str, record: dict[str, Any]) -> None:
        """Store ``record`` under ``token_id``; refuses to replace an existing record."""
        self.token_records()  # a corrupt file is refused before the lock file is made
        with exclusive_lock(self._lock_path):
            document = self.token_records()
            if token_id in document:
                raise UserSecretsError(
                    f"{self.tokens_path} already holds a JWT with ID {token_id!r}."
                )
            document[token_id] = record
            write_json_object(self.tokens_path, document)

    def remove_token_record(self, token_id: str) -> dict[str, Any] | None:
        """Remove and return the record of ``token_id``; ``None`` when there is none."""
        # Looked up first without the lock so that an unknown id creates nothing.
        if token_id not in self.token_records():
            return None
        with exclusive_lock(self._lock_path):
            document = self.token_records()
            record = document.pop(token_id, None)
            if record is not None:
                write_json_object(self.tokens_path, document)
            return record

    def clear_token_records(self) -> dict[str, dict[str, Any]]:
        """Remove every record and return them (nothing is written when there are none)."""
        if not self.token_records():
            return {}
        with exclusive_lock(self._lock_path):
            document = self.token_records()
            if document:
                write_json_object(self.tokens_path, {})
            return document


class SigningKeyWatcher:
    """The current keys of one issuer, re-read only when ``secrets.json`` changes.

    The server calls :meth:`keys` for every token. The file is stat-ed at most once per
    ``interval`` seconds of ``clock`` and read again only when its modification time,
    size or inode changed, so a ``key --reset`` is picked up without a restart and
    without reading the file per request.
    """

    def __init__(
        self,
        store: UserSecretsStore,
        issuer: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 1.0,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        # The keys and their version, replaced together so that no reader pairs the
        # keys of one version with the number of another.
        self._current: tuple[tuple[UserSigningKey, ...], int] = ((), 0)
        self._checked_at: float | None = None
        # Distinct from every file_state() result, so the first check always reads.
        self._state: object = object()

    @property
    def version(self) -> int:
        """Incremented whenever the set of keys changes."""
        return self._current[1]

    def check_due(self, now: float) -> bool:
        """Whether :meth:`current` at ``now`` would look at the file again."""
        checked_at = self._checked_at
        return checked_at is None or now - checked_at >= self._interval

    def current(self) -> tuple[tuple[UserSigningKey, ...], int]:
        """The keys of the issuer and their version, as of the last check.

        A corrupt or unreadable file is logged once per change of the file (naming it,
        without key material) and the last good keys stay in use.
        """
        now = self._clock()
        if not self.check_due(now):
            return self._current  # the common case, decided without the lock
        with self._lock:
            if not self.check_due(now):
                return self._current
            self._checked_at = now
            try:
                state = self._store.file_state()
                if state == self._state:
                    return self._current
                self._state = state
                keys = self._store.signing_keys(self._issuer)
            except UserSecretsError as exc:
                logger.warning("Keeping the last good signing keys: %s", exc)
                return self._current
            old_keys, version = self._current
            if keys != old_keys:
                self._current = (keys, version + 1)
            return self._current


def ensure_outside_source_tree(
    root: str | os.PathLike[str], app_root_path: str | os.PathLike[str]
) -> None:
    """Refuse a store root that lies inside the app's source tree.

    "Inside" means inside ``app_root_path`` or inside the nearest folder at or above it
    that holds ``.git``, ``setup.py`` or ``pyproject.toml``: keys kept there end up in
    version control sooner or later.

    :raises UserSecretsError: naming both folders.
    """
    resolved = Path(root).expanduser().resolve()
    app_root = Path(app_root_path).resolve()
    trees = [app_root]
    project = next(
        (
            folder
            for folder in (app_root, *app_root.parents)
            if any((folder / marker).exists() for marker in _PROJECT_MARKERS)
        ),
        None,
    )
    if project is not None:
        trees.append(project)
    for tree in trees:
        if resolved == tree or tree in resolved.parents:
            raise UserSecretsError(
                f"The user-secrets folder {root} is inside the source tree {tree}; keys kept "
                "there could be committed. Set AUTHFLOW_USER_SECRETS_DIR to a folder outside it."
            )


# -- helpers ----------------------------------------------------------------------


def _key_properties(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(property, scheme)`` of every ``Authentication:Schemes:*:SigningKeys`` list."""
    for prop in document:
        if prop.startswith(_KEYS_PREFIX) and prop.endswith(_KEYS_SUFFIX):
            scheme = prop[len(_KEYS_PREFIX) : -len(_KEYS_SUFFIX)]
            if scheme and ":" not in scheme:
                yield prop, scheme


def _key_list(path: Path, document: dict[str, Any], prop: str) -> list[Any]:
    entries = document.get(prop, [])
    if not isinstance(entries, list):
        raise UserSecretsError(f"{path} is corrupt: {prop!r} is not a list.")
    return entries


def _keys_of(
    path: Path, document: dict[str, Any], prop: str, scheme: str, issuer: str
) -> list[UserSigningKey]:
    """The valid keys of ``issuer`` in one list; entries of other issuers are not checked."""
    keys = []
    for index, entry in enumerate(_key_list(path, document, prop)):
        if not isinstance(entry, dict):
            raise UserSecretsError(f"{path} is corrupt: {prop}[{index}] is not an object.")
        if entry.get("Issuer") == issuer:
            keys.append(_parse_key(path, f"{prop}[{index}]", entry, scheme, issuer))
    return keys


def _parse_key(
    path: Path, where: str, entry: dict[str, Any], scheme: str, issuer: str
) -> UserSigningKey:
    key_id, value, length = entry.get("Id"), entry.get("Value"), entry.get("Length")
    if not isinstance(key_id, str) or not key_id:
        raise UserSecretsError(f"{path} is corrupt: {where} has no 'Id'.")
    if not isinstance(value, str):
        raise UserSecretsError(f"{path} is corrupt: {where} has no 'Value'.")
    try:
        material = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UserSecretsError(
            f"{path} is corrupt: the 'Value' of {where} is not base64."
        ) from exc
    if length is not None and (isinstance(length, bool) or length != len(material)):
        raise UserSecretsError(
            f"{path} is corrupt: the 'Length' of {where} does not match its 'Value'."
        )
    if len(material) < _MIN_KEY_LENGTH:
        raise UserSecretsError(
            f"{path}: the key {where} is shorter than {_MIN_KEY_LENGTH} bytes, too short for HS256."
        )
    return UserSigningKey(id=key_id, issuer=issuer, scheme=scheme, value=material)


def _new_key(scheme: str, issuer: str) -> tuple[UserSigningKey, dict[str, Any]]:
    material = secrets.token_bytes(KEY_LENGTH)
    key = UserSigningKey(id=secrets.token_hex(4), issuer=issuer, scheme=scheme, value=material)
    return key, key.entry()
