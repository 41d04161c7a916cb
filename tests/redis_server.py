"""Real Redis servers for the tests: a ``redis-server`` started on a free loopback port,
without persistence, in a temporary folder; and a fake one that accepts connections and
never answers.

A test that needs Redis calls :func:`start_redis` (or uses :class:`RedisServer` as a
context manager). Without the ``redis-server`` binary the test is skipped, unless
``AUTHFLOW_REQUIRE_REDIS`` is set (CI sets it): then it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT = 10.0
#: Client options that keep a dead or silent Redis from holding a request for long:
#: short socket timeouts, and no retries (redis-py retries ten times by default when
#: it builds the client from host and port).
FAST_FAILING_OPTIONS: dict[str, Any] = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "retry": None,
}


def redis_binary() -> str:
    """The ``redis-server`` path; skips the test, or fails it when Redis is required."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("AUTHFLOW_REQUIRE_REDIS"):
            pytest.fail(f"AUTHFLOW_REQUIRE_REDIS is set but {message}")
        pytest.skip(message)
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1; :meth:`stop` and :meth:`start` may
    be called again in a test to take it away and bring it back on the same port."""

    def __init__(self, directory: Path, binary: str) -> None:
        self.directory = directory
        self.binary = binary
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisServer:
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",  # no snapshots, no append-only file: nothing survives a stop
            "appendonly": "no",
            "dir": str(self.directory),
            "logfile": str(self.directory / "redis.log"),
            "daemonize": "no",
        }
        command = [self.binary]
        for name, value in options.items():
            command += [f"--{name}", value]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited at start on port {self.port}: {tail}")
            if self._answers_ping():
                return self
            time.sleep(0.02)  # readiness polling, not test timing
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in time")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, **FAST_FAILING_OPTIONS)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(directory: Path) -> RedisServer:
    """A started server; skips (or fails, see the module docstring) without the binary.
    Retries on another port when the chosen one was taken in the meantime."""
    binary = redis_binary()
    for attempt in range(3):
        server = RedisServer(directory / f"redis-{attempt}", binary)
        try:
            return server.start()
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers: a Redis
    that hangs. Connections are held until :meth:`close`."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._listener.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
