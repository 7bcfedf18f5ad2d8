"""The output pump: one thread drains all runs' pipes and watches pidfds; LocalExecutor owns it.

A single selector loop keeps every child's pipes drained (so no child blocks on a full pipe,
whatever it prints) and notices process exits without polling. All registration happens on
the pump thread; other threads submit requests and wake it through a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .logs import CappedLog

_log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20


@dataclass(eq=False, slots=True)
class _Stream:
    fd: int
    sink: CappedLog
    on_eof: Callable[[], None]


@dataclass(eq=False, slots=True)
class _Exit:
    fd: int
    on_exit: Callable[[], None]


class OutputPump:
    """Selector thread: stream fds feed their CappedLog until EOF, exit fds fire once."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._requests: deque[Callable[[], object]] = deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="mc-runtime-pump", daemon=True)
        self._thread.start()

    def watch_stream(self, fd: int, sink: CappedLog, on_eof: Callable[[], None]) -> None:
        """Take ownership of fd: read it into sink; at EOF close both and call on_eof."""
        os.set_blocking(fd, False)
        watch = _Stream(fd, sink, on_eof)
        self._submit(lambda: self._selector.register(fd, selectors.EVENT_READ, watch))

    def watch_exit(self, fd: int, on_exit: Callable[[], None]) -> None:
        """Take ownership of a pidfd (or any fd that turns readable once): call on_exit then."""
        watch = _Exit(fd, on_exit)
        self._submit(lambda: self._selector.register(fd, selectors.EVENT_READ, watch))

    def close_stream(self, fd: int) -> None:
        """Stop reading fd now (a straggler still holds the pipe): close it as if at EOF."""
        self._submit(lambda: self._finish_stream_fd(fd))

    def stop(self) -> None:
        """Close every fd still watched (sinks included) and end the thread."""
        with self._lock:
            self._stopping = True
        self._wake()
        self._thread.join()

    def _submit(self, request: Callable[[], object]) -> None:
        with self._lock:
            if self._stopping:
                raise RuntimeError("output pump is stopped")
            self._requests.append(request)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full of wake-ups: the loop runs anyway
            os.write(self._wake_w, b"\0")

    def _loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    if not self._drain_wake_pipe():
                        self._close_all()
                        return
                else:
                    self._dispatch_guarded(key.data)

    def _drain_wake_pipe(self) -> bool:
        """Run queued requests; False once stop() was called."""
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            requests, self._requests = list(self._requests), deque()
            stopping = self._stopping
        for request in requests:
            self._guarded(request)
        return not stopping

    def _dispatch_guarded(self, watch: _Stream | _Exit) -> None:
        """Never let one broken watch end the thread: drop it (as if at EOF/exit) instead."""
        try:
            self._dispatch(watch)
        except Exception:
            _log.exception("runtime output pump: dropping fd %d", watch.fd)
            if self._selector.get_map().get(watch.fd) is not None:
                self._selector.unregister(watch.fd)
                with contextlib.suppress(OSError):
                    os.close(watch.fd)
                if isinstance(watch, _Stream):
                    self._guarded(watch.sink.close)
                    self._guarded(watch.on_eof)
                else:
                    self._guarded(watch.on_exit)

    def _dispatch(self, watch: _Stream | _Exit) -> None:
        if isinstance(watch, _Exit):
            self._selector.unregister(watch.fd)
            os.close(watch.fd)
            self._guarded(watch.on_exit)
            return
        try:
            chunk = os.read(watch.fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self._guarded(lambda: watch.sink.write(chunk))
        else:
            self._finish_stream(watch)

    def _finish_stream_fd(self, fd: int) -> None:
        try:
            watch = self._selector.get_key(fd).data
        except KeyError:
            return  # already at EOF
        if isinstance(watch, _Stream):
            self._finish_stream(watch)

    def _finish_stream(self, watch: _Stream) -> None:
        self._selector.unregister(watch.fd)
        os.close(watch.fd)
        self._guarded(watch.sink.close)
        self._guarded(watch.on_eof)

    def _close_all(self) -> None:
        for key in list(self._selector.get_map().values()):
            if isinstance(key.data, _Stream):
                self._finish_stream(key.data)
            elif isinstance(key.data, _Exit):
                self._selector.unregister(key.fd)
                os.close(key.fd)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    @staticmethod
    def _guarded(call: Callable[[], object]) -> None:
        """A failing callback must not kill the thread every other run depends on."""
        try:
            call()
        except Exception:
            _log.exception("runtime output pump: callback failed")
