"""CappedLog: the cap, the truncation note, and redaction of secrets split across reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.runtime.logs import CappedLog

pytestmark = pytest.mark.timeout(10)


def test_writes_up_to_the_cap_then_notes_and_counts(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "out.log", "stdout", cap=10)
    for _ in range(5):
        log.write(b"abcd")
    log.close()
    text = (tmp_path / "out.log").read_text()
    assert text.startswith("abcdabcdab\n[mc: stdout capped at 10 bytes; further output discarded]")
    assert text.endswith("[mc: 20 bytes written in total]\n")
    assert (log.kept, log.seen, log.truncated) == (10, 20, True)


def test_under_the_cap_is_written_verbatim(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "out.log", "stderr", cap=100, secrets=[b"hunter22"])
    log.write(b"line one\n")
    log.write(b"line two\n")
    log.close()
    assert (tmp_path / "out.log").read_bytes() == b"line one\nline two\n"
    assert not log.truncated


@pytest.mark.parametrize("split", range(1, 16))
def test_secret_split_across_writes_is_redacted(tmp_path: Path, split: int) -> None:
    data = b"token=s3cr3t-VALUE-42; again s3cr3t-VALUE-42!"
    log = CappedLog(tmp_path / "out.log", "stdout", cap=1000, secrets=[b"s3cr3t-VALUE-42"])
    for i in range(0, len(data), split):
        log.write(data[i : i + split])
    log.close()
    assert (tmp_path / "out.log").read_bytes() == b"token=[redacted]; again [redacted]!"
