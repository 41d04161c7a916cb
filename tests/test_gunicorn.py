"""The example API under gunicorn with four worker processes, against a counting JWKS
server: a cold burst of concurrent requests causes one key-set fetch for all workers
when they share Redis, and one per worker that answered with SimpleCache.

Everything listens on 127.0.0.1; the burst is bounded in requests and in time, and
gunicorn is stopped by the test whatever happens.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_server import FAST_FAILING_OPTIONS, free_port
from support import AUDIENCE

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
THREADS = 16
REQUESTS_PER_THREAD = 2
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 20.0
PRIVATE = "/api/messages/private"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
)


@dataclass(frozen=True)
class Answer:
    status: int
    pid: str | None
    body: Any


class Gunicorn:
    """``gunicorn -w 4 gunicorn_app:create_app()`` on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        command = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(WORKERS),
            "--bind", f"127.0.0.1:{self.port}",
            "--pythonpath", f"{ROOT},{ROOT / 'tests'}",
            # The app is built once and forked: a worker is ready as soon as it is booted.
            "--preload",
            "--timeout", "30",
            "--graceful-timeout", "5",
            "--log-level", "info",
            "gunicorn_app:create_app()",
        ]  # fmt: skip
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that all of it can be stopped
        )

    def wait_until_ready(self) -> None:
        """Poll until the port answers and every worker has booted."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited at start:\n{self.output()}")
            if self.output().count("Booting worker with pid") >= WORKERS and self._answers():
                return
            time.sleep(0.05)  # readiness polling, not test timing
        raise AssertionError(f"gunicorn was not ready in {START_TIMEOUT}s:\n{self.output()}")

    def _answers(self) -> bool:
        try:
            return get(self.port, "/api/messages/public", {}).status == 200
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # quick shutdown: nothing is in flight
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log_file.close()


def get(
    port: int, path: str, headers: dict[str, str], sent: threading.Semaphore | None = None
) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", path, headers=headers)
        if sent is not None:
            sent.release()
        response = connection.getresponse()
        body = response.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body
        return Answer(response.status, response.getheader("X-Worker-Pid"), parsed)
    finally:
        connection.close()


def cold_burst(port: int, token: str, jwks_server: Any) -> list[Answer]:
    """THREADS x REQUESTS_PER_THREAD concurrent requests from a cold start. The JWKS
    server holds its answer until every thread has sent its first request, so workers
    meet while the first fetch is in flight."""
    gate = threading.Event()
    jwks_server.answer.gate = gate
    sent = threading.Semaphore(0)
    answers: list[Answer | BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        for n in range(REQUESTS_PER_THREAD):
            try:
                answer: Answer | BaseException = get(
                    port, PRIVATE, {"Authorization": f"Bearer {token}"}, sent if n == 0 else None
                )
            except Exception as exc:  # noqa: BLE001 - reported by the test
                answer = exc
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(THREADS):
            assert sent.acquire(timeout=REQUEST_TIMEOUT)
        assert jwks_server.hit_event.wait(timeout=REQUEST_TIMEOUT)
    finally:
        gate.set()
    for thread in threads:
        thread.join(timeout=2 * REQUEST_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)
    failures = [a for a in answers if not isinstance(a, Answer) or a.status != 200]
    assert not failures, failures
    assert len(answers) == THREADS * REQUESTS_PER_THREAD
    return [a for a in answers if isinstance(a, Answer)]


@pytest.fixture
def run_example(tmp_path, issuer) -> Iterator[Any]:
    started: list[Gunicorn] = []

    def run(**settings: Any) -> Gunicorn:
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("AUTHFLOW_")
        }
        env.update(
            AUTHFLOW_AUTH0_ISSUER=issuer,
            AUTHFLOW_AUTH0_AUDIENCE=AUDIENCE,
            AUTHFLOW_REQUIRE_HTTPS_METADATA="false",
            AUTHFLOW_ENV="production",
            AUTHFLOW_USER_SECRETS_DIR=str(tmp_path / "usersecrets"),
        )
        env.update(
            {
                f"AUTHFLOW_{name}": json.dumps(value) if not isinstance(value, str) else value
                for name, value in settings.items()
            }
        )
        server = Gunicorn(env, tmp_path / f"gunicorn-{len(started)}.log")
        started.append(server)
        server.wait_until_ready()
        return server

    yield run
    for server in started:
        server.stop()


def test_four_workers_sharing_redis_fetch_the_keys_once(
    run_example, redis_server, jwks_server, mint
):
    server = run_example(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_server.url,
        CACHE_OPTIONS=FAST_FAILING_OPTIONS,
    )
    answers = cold_burst(server.port, mint(), jwks_server)

    pids = {answer.pid for answer in answers}
    assert len(pids) >= 2, server.output()  # several workers took part
    assert jwks_server.jwks_hits() == 1
    assert redis_server.client().keys("*authflow:jwks:*")
    assert all(answer.body["scheme"] == "Auth0" for answer in answers)


def test_four_workers_with_simplecache_fetch_once_each(run_example, jwks_server, mint):
    server = run_example(CACHE_TYPE="SimpleCache")
    answers = cold_burst(server.port, mint(), jwks_server)

    pids = {answer.pid for answer in answers}
    assert len(pids) >= 2, server.output()
    assert jwks_server.jwks_hits() == len(pids)
