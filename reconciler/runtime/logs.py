"""Size-capped, secret-redacting log files for a child's stdout/stderr; fed by the output pump.

A child that prints a gigabyte must neither fill the disk nor block on a full pipe: the pump
keeps reading, this writes up to the cap, notes the truncation in the log, and counts the rest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .nofollow import open_file

REDACTED = b"[redacted]"


def truncation_note(stream: str, cap: int) -> bytes:
    return f"\n[mc: {stream} capped at {cap} bytes; further output discarded]\n".encode()


class CappedLog:
    """Writes a stream to a file up to `cap` bytes of content, replacing secret values.

    Redaction holds back the last len(longest secret) - 1 bytes until more data (or close)
    arrives, so a secret split across two reads is still caught.
    """

    def __init__(self, path: Path, stream: str, cap: int, secrets: Sequence[bytes] = ()) -> None:
        self.path = path
        self.kept = 0  # content bytes in the file (excluding our notes)
        self.seen = 0  # bytes the child wrote
        self.truncated = False
        self._stream = stream
        self._cap = cap
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._hold = max((len(s) for s in self._secrets), default=1) - 1
        self._pending = b""
        # From `.mc` down no link is followed: a planted stdout.log link is refused (PlantedLink).
        fd = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.seen += len(data)
        if self.truncated:
            return
        if not self._secrets:
            self._keep(data)
            return
        data = self._redact(self._pending + data)
        cut = max(len(data) - self._hold, 0)
        self._pending = data[cut:]
        self._keep(data[:cut])

    def close(self) -> None:
        if self._file.closed:
            return
        if not self.truncated and self._pending:
            self._keep(self._pending)
        self._pending = b""
        try:
            if self.truncated:
                self._file.write(f"[mc: {self.seen} bytes written in total]\n".encode())
            self._file.close()
        except OSError:
            pass

    def _redact(self, data: bytes) -> bytes:
        for secret in self._secrets:
            data = data.replace(secret, REDACTED)
        return data

    def _keep(self, data: bytes) -> None:
        try:
            self._write(data)
        except OSError:  # disk full or the like: stop writing, keep draining the child
            self.truncated = True
            self._pending = b""

    def _write(self, data: bytes) -> None:
        room = self._cap - self.kept
        if len(data) <= room:
            self._file.write(data)
            self._file.flush()  # so the dashboard can tail a live log
            self.kept += len(data)
            return
        self._file.write(data[:room])
        self.kept += room
        self.truncated = True
        self._pending = b""
        self._file.write(truncation_note(self._stream, self._cap))
        self._file.flush()
