"""`.mc/serve.json` is believed only for a live process listening on loopback (issue 12): a
forged or stale file never points a command, or the dashboard token, anywhere else."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.git import git

from reconciler.commands.context import MissionContext
from reconciler.commands.served import Served, trusted_serve

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def serve_json(tmp_path: Path) -> Path:
    return tmp_path / "serve.json"


def claim(path: Path, pid: int, url: str) -> Path:
    path.write_text(json.dumps({"pid": pid, "url": url}))
    return path


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A socket of this process listening on 127.0.0.1 (an ephemeral port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


@pytest.fixture
def bystander() -> Iterator[int]:
    """A live process that listens on nothing."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def test_a_live_process_listening_on_loopback_is_trusted(
    serve_json: Path, listening: socket.socket
) -> None:
    port = port_of(listening)
    found = trusted_serve(claim(serve_json, _me(), f"http://127.0.0.1:{port}/"))
    assert found == Served(_me(), f"http://127.0.0.1:{port}/")


def test_localhost_means_the_loopback_address(serve_json: Path, listening: socket.socket) -> None:
    port = port_of(listening)
    found = trusted_serve(claim(serve_json, _me(), f"http://localhost:{port}/"))
    assert found == Served(_me(), f"http://127.0.0.1:{port}/")


def test_a_wildcard_listener_is_reached_on_loopback(serve_json: Path) -> None:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::", 0))
        sock.listen()
        port = port_of(sock)
        found = trusted_serve(claim(serve_json, _me(), f"http://[::1]:{port}/"))
    assert found == Served(_me(), f"http://[::1]:{port}/")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3:{port}/",  # not loopback
        "http://evil.example:{port}/",  # a name: could resolve anywhere
        "https://127.0.0.1:{port}/",  # not what serve speaks
        "http://user@127.0.0.1:{port}/",
        "http://127.0.0.1@10.1.2.3:{port}/",
        "http://127.0.0.1:{port}/api/cli/?next=http://10.1.2.3/",
        "http://127.0.0.1/",  # no port
        "http://127.0.0.1:{port}x/",
    ],
)
def test_a_url_that_is_not_plain_loopback_http_is_ignored(
    serve_json: Path, listening: socket.socket, url: str
) -> None:
    assert trusted_serve(claim(serve_json, _me(), url.format(port=port_of(listening)))) is None


def test_a_dead_pid_is_ignored(serve_json: Path, listening: socket.socket) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    url = f"http://127.0.0.1:{port_of(listening)}/"
    assert trusted_serve(claim(serve_json, gone.pid, url)) is None


def test_a_live_process_that_does_not_listen_on_the_port_is_ignored(
    serve_json: Path, listening: socket.socket, bystander: int
) -> None:
    """Someone else (here: this test) listens on the port; the pid named does not."""
    url = f"http://127.0.0.1:{port_of(listening)}/"
    assert trusted_serve(claim(serve_json, bystander, url)) is None


def test_listening_on_another_port_is_not_enough(
    serve_json: Path, listening: socket.socket
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        free_port = port_of(other)  # bound, not listening
        url = f"http://127.0.0.1:{free_port}/"
        assert trusted_serve(claim(serve_json, _me(), url)) is None


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"pid": "1", "url": "x"}', '{"pid": true, "url": "http://127.0.0.1:1/"}'],
)
def test_a_malformed_file_is_ignored(serve_json: Path, text: str) -> None:
    serve_json.write_text(text)
    assert trusted_serve(serve_json) is None


def test_the_context_names_serve_only_when_it_holds_the_lock(
    tmp_path: Path, listening: socket.socket
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    ctx = MissionContext.at(root)
    url = f"http://127.0.0.1:{port_of(listening)}/"
    ctx.repo.mc_dir.mkdir(exist_ok=True)
    claim(ctx.repo.mc_dir / "serve.json", _me(), url)
    assert ctx.served_by() == (_me(), url)
    assert ctx.served_by(holder=_me()) == (_me(), url)
    assert ctx.served_by(holder=_me() + 1) is None  # the state's lock is someone else's


def _me() -> int:
    return os.getpid()
