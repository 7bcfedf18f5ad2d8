"""The holder socket as a boundary: whatever a local client sends, the holder answers with a
reply (never a traceback, never a dead thread), and a client believes only the lock's pid."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from reconciler.commands.holder import (
    MAX_REQUEST,
    HolderRefused,
    HolderSocket,
    HolderUnavailable,
    WriteRequest,
    ask,
)
from specs.errors import MCError


def _read(view: str, params: Mapping[str, str]) -> Any:
    if view == "boom":
        raise RuntimeError("a bug in one view")
    if view == "refused":
        raise MCError("no task 'x' (see `mc tasks`)")
    return {"view": view, "params": dict(params)}


def _submit(request: WriteRequest) -> Future[str]:
    done: Future[str] = Future()
    done.set_result(f"requeued {request.target}")
    return done


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[HolderSocket]:
    mc_dir = tmp_path / ("a-long-directory-name-" * 5) / ".mc"  # past the 108-byte limit
    mc_dir.mkdir(parents=True)
    sock = HolderSocket(mc_dir, "mc apply", _read, _submit)
    sock.start()
    try:
        yield sock
    finally:
        sock.close()


def _raw(holder: HolderSocket, payload: bytes) -> dict[str, Any]:
    fd = os.open(holder.mc_dir, os.O_PATH | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(10)
            conn.connect(f"/proc/self/fd/{fd}/holder.sock")
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            data = b"".join(iter(lambda: conn.recv(65536), b""))
    finally:
        os.close(fd)
    reply: dict[str, Any] = json.loads(data)
    return reply


def test_views_and_queued_writes_answer_with_the_holders_name(holder: HolderSocket) -> None:
    assert oct(holder.path.stat().st_mode & 0o777) == "0o600"
    reply = ask(holder.mc_dir, os.getpid(), {"view": "tasks", "params": {"state": "FAILED"}})
    assert reply.body == {"view": "tasks", "params": {"state": "FAILED"}}
    assert reply.source == f"(from `mc apply`, pid {os.getpid()}, which holds the state)"
    wrote = ask(holder.mc_dir, os.getpid(), {"write": "retry", "target": "t", "actor": "cli:me"})
    assert wrote.body == "requeued t"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"not json\n", "bad request"),
        (b"[1, 2]\n", "must be a JSON object"),
        (b'{"view": "x", "params": {"a": 1}}\n', "params must map names to strings"),
        (b'{"write": "drop-table"}\n', "unknown request"),
        (b'{"write": "retry", "target": 7}\n', "retry needs a target and an actor"),
        (b'{"view": "boom"}\n', "internal error: RuntimeError: a bug in one view"),
        (b"{" + b" " * MAX_REQUEST + b"}\n", "request too large"),
    ],
)
def test_hostile_requests_get_a_refusal_and_the_holder_goes_on(
    holder: HolderSocket, payload: bytes, error: str
) -> None:
    reply = _raw(holder, payload)
    assert reply["ok"] is False and error in " ".join(reply["error"])
    again = ask(holder.mc_dir, os.getpid(), {"view": "status"})
    assert again.body["view"] == "status"


def test_a_refusal_reaches_the_client_as_its_lines(holder: HolderSocket) -> None:
    with pytest.raises(HolderRefused) as refused:
        ask(holder.mc_dir, os.getpid(), {"view": "refused"})
    assert refused.value.lines() == ["no task 'x' (see `mc tasks`)"]


def test_a_client_asks_only_the_pid_that_holds_the_lock(holder: HolderSocket) -> None:
    with pytest.raises(HolderUnavailable, match="not by pid 1 that holds the state"):
        ask(holder.mc_dir, 1, {"view": "status"})
    holder.close()
    with pytest.raises(HolderUnavailable, match="no holder socket"):
        ask(holder.mc_dir, os.getpid(), {"view": "status"})
