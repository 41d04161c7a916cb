"""Files that hold secrets: strict JSON reads, atomic private writes, an exclusive lock.

The mechanics under :mod:`flask_authflow.user_secrets`, kept apart so that the store
reads as its layout. Every message names the file and never includes its content.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import strict_json

_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class UserSecretsError(Exception):
    """The store cannot be used: a file is corrupt, a symlink, unreadable or misplaced.

    The message names the file or folder concerned and never includes key material.
    """


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when the file is absent or empty.

    Opened with ``O_NOFOLLOW`` so that a symlink is refused without a race.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NO_FOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        if path.is_symlink():
            raise UserSecretsError(f"{path} is a symbolic link; refusing to use it.") from exc
        raise UserSecretsError(f"Cannot read {path}: {exc.strerror}.") from exc
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise UserSecretsError(f"{path} is not a regular file; refusing to use it.")
        data = file.read()
    try:
        text = data.decode("utf-8-sig")  # .NET tools may write a byte-order mark
    except UnicodeDecodeError as exc:
        raise UserSecretsError(f"{path} is corrupt: it is not UTF-8 text.") from exc
    if not text.strip():
        return {}
    try:
        document = strict_json.loads(text)
    except json.JSONDecodeError as exc:
        # The decoder's message holds a position, never the file's content.
        raise UserSecretsError(
            f"{path} is corrupt: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except (ValueError, RecursionError) as exc:  # NaN, Infinity, duplicates, nesting
        raise UserSecretsError(f"{path} is corrupt: it is not strict JSON.") from exc
    if not isinstance(document, dict):
        raise UserSecretsError(f"{path} is corrupt: it does not hold a JSON object.")
    return document


def write_json_object(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` atomically: temporary file, fsync, rename, fsync of the folder."""
    if path.is_symlink():
        raise UserSecretsError(f"{path} is a symbolic link; refusing to use it.")
    text = json.dumps(document, indent=2) + "\n"
    try:
        # mkstemp creates the file with mode 0600 in the same folder, so the rename
        # below stays on one file system and is atomic.
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserSecretsError(f"Cannot write {path}: {exc.strerror}.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        _remove_quietly(temporary)
        raise UserSecretsError(f"Cannot write {path}: {exc.strerror}.") from exc
    except BaseException:
        _remove_quietly(temporary)
        raise
    _fsync_folder(path.parent)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows cannot open folders)."""
    if os.name != "posix":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold ``flock`` on ``lock_path``, creating its folder (0700) and the file (0600).

    The lock file is never deleted: removing it while another process waits on it
    would let two writers in at once.
    """
    try:
        import fcntl
    except ImportError as exc:  # pragma: no cover - Windows
        raise UserSecretsError(
            f"Cannot write to {lock_path.parent}: writing needs POSIX file locks (fcntl)."
        ) from exc
    make_private_folder(lock_path.parent)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _NO_FOLLOW, 0o600)
    except OSError as exc:
        raise UserSecretsError(f"Cannot open the lock file {lock_path}: {exc.strerror}.") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # which releases the lock


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` and any missing parents with mode 0700, and make ``folder`` 0700.

    An existing folder (.NET makes them 0755) is tightened; existing parents are not
    touched.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    try:
        for created in reversed(missing):
            try:
                created.mkdir(mode=0o700)
            except FileExistsError:
                pass  # made by a concurrent writer in between
            # mkdir's mode is filtered through the umask; set it explicitly.
            os.chmod(created, 0o700)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise UserSecretsError(f"Cannot create the folder {folder}: {exc.strerror}.") from exc
