"""redact.py: secret values replaced in streams fed in pieces (logs, drop copies) and in the
JSON values a run returns, keys included."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.runtime.drop_store import store_drops
from reconciler.runtime.redact import Redactor, as_text, redact_value
from reconciler.runtime.types import Drop, DropCaps

SECRET = b"s3cr3t-value-42"


@pytest.mark.parametrize("piece", [1, 2, 7, len(SECRET) - 1, len(SECRET), 1000])
def test_a_secret_split_across_pieces_is_caught(piece: int) -> None:
    data = b"a" * 5 + SECRET + b"middle" + SECRET + b"end" + SECRET
    redactor = Redactor([SECRET, b"value"])
    out = b"".join(redactor.feed(data[i : i + piece]) for i in range(0, len(data), piece))
    out += redactor.flush()
    assert out == b"aaaaa[redacted]middle[redacted]end[redacted]"


def test_no_secrets_pass_everything_through_at_once() -> None:
    redactor = Redactor([b""])
    assert redactor.feed(b"abc") == b"abc" and redactor.flush() == b""


def test_values_keys_and_nesting_are_redacted() -> None:
    secrets = as_text([SECRET, "caf\u00e9".encode(), b"\xff\xfe-undecodable"])
    value = {"k": [SECRET.decode(), {SECRET.decode(): "caf\u00e9 x"}], "n": 3, "b": None}
    assert redact_value(value, secrets) == {
        "k": ["[redacted]", {"[redacted]": "[redacted] x"}],
        "n": 3,
        "b": None,
    }


def test_a_drop_is_stored_redacted_even_across_copy_chunks(tmp_path: Path) -> None:
    workspace = tmp_path / ".mc" / "work" / "t" / "1"
    (workspace / "out").mkdir(parents=True)
    body = b"x" * ((1 << 20) - 5) + SECRET + b"tail"  # the secret straddles the 1 MiB chunk
    (workspace / "out" / f"{SECRET.decode()}.bin").write_bytes(body)
    stored = store_drops(workspace, DropCaps(), [SECRET])
    assert isinstance(stored, tuple) and len(stored) == 1
    drop: Drop = stored[0]
    assert drop.local_path.read_bytes() == b"x" * ((1 << 20) - 5) + b"[redacted]tail"
    assert drop.size == drop.local_path.stat().st_size
