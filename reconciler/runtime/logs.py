"""Size-capped, secret-redacting log files for a child's stdout/stderr; fed by the output pump.

A child that prints a gigabyte must neither fill the disk nor block on a full pipe: the pump
keeps reading, this writes up to the cap, notes the truncation in the log, and counts the rest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .nofollow import open_file
from .redact import Redactor


def truncation_note(stream: str, cap: int) -> bytes:
    return f"\n[mc: {stream} capped at {cap} bytes; further output discarded]\n".encode()


class CappedLog:
    """Writes a stream to a file up to `cap` bytes of content, replacing secret values.

    Redaction (redact.Redactor) holds back the last len(longest secret) - 1 bytes until more
    data (or close) arrives, so a secret split across two reads is still caught.
    """

    def __init__(self, path: Path, stream: str, cap: int, secrets: Sequence[bytes] = ()) -> None:
        self.path = path
        self.kept = 0  # content bytes in the file (excluding our notes)
        self.seen = 0  # bytes the child wrote
        self.truncated = False
        self._stream = stream
        self._cap = cap
        self._redactor = Redactor(secrets)
        # From `.mc` down no link is followed: a planted stdout.log link is refused (PlantedLink).
        fd = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.seen += len(data)
        if self.truncated:
            return
        self._keep(self._redactor.feed(data))

    def close(self) -> None:
        if self._file.closed:
            return
        rest = self._redactor.flush()
        if not self.truncated and rest:
            self._keep(rest)
        try:
            if self.truncated:
                self._file.write(f"[mc: {self.seen} bytes written in total]\n".encode())
            self._file.close()
        except OSError:
            pass

    def _keep(self, data: bytes) -> None:
        try:
            self._write(data)
        except OSError:  # disk full or the like: stop writing, keep draining the child
            self.truncated = True
            self._redactor.drop_pending()

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
        self._redactor.drop_pending()
        self._file.write(truncation_note(self._stream, self._cap))
        self._file.flush()
