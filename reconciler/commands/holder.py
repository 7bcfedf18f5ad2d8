"""The local socket of the process that holds the state (`mc apply`, `mc serve`, `mc bot`):
other `mc` commands read through it while DuckDB's one-writer lock keeps them out, and queue
through it the few writes only the holder may make (`mc retry`). Read-only except that queue.

One JSON line in, one JSON document out, then the connection closes:
    {"view": "tasks", "params": {...}}         -> {"ok": true, "holder", "pid", "body"}
    {"write": "retry", "target", "actor"}      -> {"ok": true, ..., "body": "<outcome line>"}
    anything refused                           -> {"ok": false, "error": ["line", ...]}

Trust: the socket is `.mc/holder.sock`, mode 0600, made in a private directory and moved into
place; the server answers only peers of its own uid (SO_PEERCRED). A client believes only a
socket whose peer process is the very pid that holds the DuckDB lock, so a socket planted in
.mc/ is never asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import socketserver
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.errors import MCError

SOCKET_NAME = "holder.sock"
MAX_REQUEST = 64 * 1024
MAX_ANSWER = 256 * 1024 * 1024
ANSWER_TIMEOUT_S = 120.0  # a plan of a big mission takes seconds; a hang guard only
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class HolderUnavailable(MCError):
    """The holder of the state cannot be asked (no socket, or not the lock's holder)."""


class HolderRefused(MCError):
    """The holder answered with an error (a spec problem, an unknown task, …): its lines."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self._lines = lines

    def lines(self) -> list[str]:
        return list(self._lines)


@dataclass(frozen=True, slots=True)
class RetryRequest:
    """`mc retry TARGET` carried out by the holder (a task, a workflow run or one step)."""

    target: str
    actor: str


WriteRequest = RetryRequest
ReadFn = Callable[[str, Mapping[str, str]], Any]
SubmitFn = Callable[[WriteRequest], "Future[str]"]


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer from the holder, and who gave it ("mc apply", pid)."""

    body: Any
    holder: str
    pid: int

    @property
    def source(self) -> str:
        return f"(from `{self.holder}`, pid {self.pid}, which holds the state)"


@contextmanager
def _at(directory: Path) -> Iterator[str]:
    """A short path to `directory` (its descriptor under /proc/self/fd): socket addresses are
    limited to 108 bytes, and test or home directories can be longer."""
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    holder: HolderSocket


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = 30.0  # a client that connects and says nothing does not keep a thread for good

    def handle(self) -> None:
        _, uid, _ = _CRED.unpack(
            self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
        )
        if uid != os.getuid():
            return  # another user: no answer at all
        try:
            line = self.rfile.readline(MAX_REQUEST + 1)
        except TimeoutError:
            return
        reply = self.server.holder.handle(line)
        with contextlib.suppress(OSError):  # the client went away: nothing to tell it
            self.wfile.write(json.dumps(reply, default=str).encode())


class HolderSocket:
    """Serves the read views (and the write queue) of the process holding the state."""

    def __init__(self, mc_dir: Path, holder: str, read: ReadFn, submit: SubmitFn) -> None:
        self.mc_dir, self.holder_name = mc_dir, holder
        self._read, self._submit = read, submit
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.mc_dir / SOCKET_NAME

    def start(self) -> None:
        """Bind `.mc/holder.sock` (0600) and answer in a background thread. The caller holds
        the state's write lock, so a socket left by a dead holder is ours to replace."""
        private = Path(tempfile.mkdtemp(prefix=".holder-", dir=self.mc_dir))  # 0700
        try:
            with _at(private) as short:
                server = _Server(f"{short}/{SOCKET_NAME}", _Handler, bind_and_activate=True)
                os.chmod(f"{short}/{SOCKET_NAME}", 0o600)
            os.replace(private / SOCKET_NAME, self.path)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        server.holder = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="holder-socket"
        )
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)
        self._server = None

    def handle(self, line: bytes) -> dict[str, Any]:
        """One request line -> the reply document (errors are replies, never exceptions)."""
        try:
            if len(line) > MAX_REQUEST:
                raise MCError("request too large")
            request = json.loads(line)
            if not isinstance(request, dict):
                raise MCError("request must be a JSON object")
            body = self._dispatch(request)
        except MCError as exc:
            return {"ok": False, "error": exc.lines()}
        except ValueError as exc:
            return {"ok": False, "error": [f"bad request: {exc}"]}
        except Exception as exc:  # a bug in one view must not take the holder's thread down
            return {"ok": False, "error": [f"internal error: {type(exc).__name__}: {exc}"]}
        return {"ok": True, "holder": self.holder_name, "pid": os.getpid(), "body": body}

    def _dispatch(self, request: dict[str, Any]) -> Any:
        if "view" in request:
            params = request.get("params") or {}
            if not isinstance(params, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in params.items()
            ):
                raise MCError("params must map names to strings")
            return self._read(str(request["view"]), params)
        if request.get("write") == "retry":
            target, actor = request.get("target"), request.get("actor")
            if not isinstance(target, str) or not isinstance(actor, str):
                raise MCError("retry needs a target and an actor")
            done = self._submit(RetryRequest(target, actor))
            return done.result(timeout=ANSWER_TIMEOUT_S)
        raise MCError("unknown request (expected a view or a write)")


def ask(mc_dir: Path, holder_pid: int | None, request: Mapping[str, Any]) -> Reply:
    """Send one request to the process holding the state (pid `holder_pid`, from the lock).

    Raises HolderUnavailable when there is no socket, or its peer is not that process (a
    holder from before this feature, or a planted socket), and MCError with the holder's
    own words when it refused the request."""
    if holder_pid is None:
        raise HolderUnavailable("the state's holder is unknown (no pid in the lock)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(ANSWER_TIMEOUT_S)
        try:
            with _at(mc_dir) as short:
                sock.connect(f"{short}/{SOCKET_NAME}")
        except OSError as exc:
            raise HolderUnavailable(f"no holder socket in {mc_dir} ({exc.strerror})") from None
        pid, uid, _ = _CRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
        )
        if pid != holder_pid or uid != os.getuid():
            raise HolderUnavailable(
                f"{mc_dir / SOCKET_NAME} is served by pid {pid}, not by pid {holder_pid}"
                " that holds the state; not asked"
            )
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = _read_all(sock)
    try:
        reply = json.loads(data)
    except ValueError:
        raise MCError(f"the holder of the state (pid {pid}) gave an unreadable answer") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = reply.get("error") if isinstance(reply, dict) else None
        lines = [str(x) for x in error] if isinstance(error, list) else []
        raise HolderRefused(lines or ["the holder of the state refused the request"])
    return Reply(reply.get("body"), str(reply.get("holder", "mc")), pid)


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            raise MCError("the holder of the state did not answer in time") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise MCError("the holder's answer is too large")
        chunks.append(chunk)
