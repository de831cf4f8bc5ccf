"""A real ``redis-server`` for the fleet tests: found on PATH (installed from Debian's package
when missing and we are root, as ``.ci/run`` does), started on a free loopback port with no
persistence, stopped afterwards. Tests skip only when it can be neither found nor installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

READY = b"Ready to accept connections"


def _redis_server() -> str | None:
    path = shutil.which("redis-server")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
            if subprocess.run(cmd, capture_output=True, timeout=600).returncode != 0:  # noqa: S603
                break
        path = shutil.which("redis-server")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """One running ``redis-server`` (kill it to test degradation)."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_redis(binary: str) -> RedisServer:
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--loglevel", "notice"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the server says when it is ready: no polling, no sleeps
        seen.append(line)
        if READY in line:
            break
    else:
        proc.wait(timeout=10)
        raise RuntimeError(f"redis-server did not start: {b''.join(seen)[-2000:]!r}")
    # keep draining its log so a chatty server never blocks on a full pipe
    subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)  # noqa: S603, S607
    return RedisServer(proc=proc, port=port)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    path = _redis_server()
    if path is None:
        pytest.skip("redis-server is not installed and could not be installed (apt-get install redis-server)")
    return path


@pytest.fixture
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """A fresh server per test (several real processes share it; some tests kill it)."""
    server = start_redis(redis_binary)
    try:
        yield server
    finally:
        server.kill()
