"""The drops store: out/ copied into `.mc/drops/xx/<sha256>` without links, bounded by apparent
size and count, hashed from the copy, and no temp file left on any path (ENOSPC included)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.runtime.drop_store import DropsRefused, _copy_bounded, _Refuse, store_drops
from reconciler.runtime.types import Drop, DropCaps

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
CAP_4M = DropCaps(max_file_bytes=4 * MiB)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace `.mc/work/t/1` with an empty out/."""
    root = tmp_path / "repo" / ".mc" / "work" / "t" / "1"
    (root / "out").mkdir(parents=True)
    return root


def store_of(ws: Path) -> Path:
    return ws.parents[2] / "drops"


def stored_files(ws: Path) -> list[Path]:
    store = store_of(ws)
    return sorted(p for p in store.rglob("*") if p.is_file()) if store.exists() else []


def stored(ws: Path, caps: DropCaps | None = None) -> tuple[Drop, ...]:
    found = store_drops(ws, caps or DropCaps())
    assert not isinstance(found, DropsRefused), found
    return found


def refused(ws: Path, caps: DropCaps) -> DropsRefused:
    found = store_drops(ws, caps)
    assert isinstance(found, DropsRefused), found
    assert not [p for p in stored_files(ws) if p.name.startswith(".tmp-")]
    return found


def test_files_are_stored_under_their_hash_with_path_size_and_type(ws: Path) -> None:
    (ws / "out" / "report.md").write_text("# Report\n")
    (ws / "out" / "a" / "b").mkdir(parents=True)
    (ws / "out" / "a" / "b" / "data.bin").write_bytes(bytes(range(256)))
    (ws / "out" / "copy.md").write_text("# Report\n")  # same content: stored once
    drops = {d.path: d for d in stored(ws)}
    assert sorted(drops) == ["a/b/data.bin", "copy.md", "report.md"]
    report = drops["report.md"]
    assert report.sha256 == hashlib.sha256(b"# Report\n").hexdigest()
    assert (report.size, report.media_type) == (9, "text/markdown")
    assert report.local_path == store_of(ws) / report.sha256[:2] / report.sha256
    assert drops["copy.md"].local_path == report.local_path
    assert len(stored_files(ws)) == 2
    for drop in drops.values():
        assert hashlib.sha256(drop.local_path.read_bytes()).hexdigest() == drop.sha256


def test_links_are_not_drops_and_are_never_followed(ws: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("private")
    (ws / "out" / "real.txt").write_text("x")
    (ws / "out" / "key").symlink_to(secret / "key")
    (ws / "out" / "dir").symlink_to(secret)
    assert [d.path for d in stored(ws)] == ["real.txt"]
    assert all(p.read_bytes() != b"private" for p in stored_files(ws))


def test_out_replaced_by_a_link_yields_no_drops(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_text("not the agent's")
    (ws / "out").rmdir()
    (ws / "out").symlink_to(tmp_path / "elsewhere")
    assert stored(ws) == ()


def test_a_planted_link_for_the_store_is_refused(ws: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    store_of(ws).symlink_to(target)
    (ws / "out" / "f.txt").write_text("x")
    found = store_drops(ws, DropCaps())
    assert isinstance(found, DropsRefused)
    assert found.status == "failed"
    assert "drops" in found.reason and "symlink" in found.reason
    assert list(target.iterdir()) == []


def test_a_workspace_swapped_for_a_link_is_refused(ws: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "out").mkdir(parents=True)
    (elsewhere / "out" / "id_rsa").write_text("private")
    ws.rename(ws.with_name("moved"))
    ws.symlink_to(elsewhere)
    found = store_drops(ws, DropCaps())
    assert isinstance(found, DropsRefused) and "symlink" in found.reason
    assert stored_files(ws) == []


def test_a_sparse_file_counts_by_apparent_size_and_nothing_is_copied(ws: Path) -> None:
    with (ws / "out" / "huge.bin").open("wb") as f:
        f.truncate(2 * 1024**3)  # sparse: no blocks on disk
    found = refused(ws, DropCaps())
    assert found.status == "failed"
    assert "out/huge.bin" in found.reason
    assert "2.0 GiB" in found.reason and "25.0 MiB" in found.reason
    assert "drops.max_file" in found.reason
    assert stored_files(ws) == []


def test_the_run_total_is_checked_before_copying(ws: Path) -> None:
    for name in ("a", "b", "c"):
        (ws / "out" / name).write_bytes(b"x" * 100)
    found = refused(ws, DropCaps(max_file_bytes=150, max_run_bytes=250, max_files=10))
    assert found.status == "failed"
    assert "out/c" in found.reason and "drops.max_run" in found.reason
    assert stored_files(ws) == []  # nothing was copied


def test_the_count_cap_names_the_file_over_it_without_reading_the_rest(ws: Path) -> None:
    for i in range(3000):
        (ws / "out" / f"f{i:05d}").write_bytes(b"x")
    start = time.monotonic()
    found = refused(ws, DropCaps(max_files=1000))
    assert time.monotonic() - start < 1.0
    assert "1000" in found.reason and "drops.max_files" in found.reason
    assert "out/f" in found.reason
    assert stored_files(ws) == []


def test_the_copy_stops_at_the_cap_when_the_file_is_longer_than_measured(
    ws: Path, tmp_path: Path
) -> None:
    """The copy loop itself counts: a file measured small that grew to 10 MiB meanwhile is
    cut off at the cap (4 MiB), never copied further."""
    src = tmp_path / "grown.bin"
    src.write_bytes(b"y" * (10 * MiB))
    dst = tmp_path / "copy"
    with src.open("rb") as reader, dst.open("wb") as writer, pytest.raises(_Refuse) as caught:
        _copy_bounded(reader.fileno(), writer.fileno(), ("grown.bin",), CAP_4M, 0)
    assert "out/grown.bin" in caught.value.refused.reason
    assert "drops.max_file" in caught.value.refused.reason
    assert dst.stat().st_size <= CAP_4M.max_file_bytes


def test_a_file_growing_while_collected_is_refused_or_stored_within_its_cap(ws: Path) -> None:
    """Another process appends as fast as it can: whichever check sees it, nothing over the
    cap is stored, a stored copy matches its hash, and no temp file stays."""
    path = ws / "out" / "growing.log"
    path.write_bytes(b"y" * MiB)
    writer = subprocess.Popen(
        ["dd", "if=/dev/zero", f"of={path}", "bs=1M", "count=64", "oflag=append", "conv=notrunc"],
        stderr=subprocess.DEVNULL,
    )
    try:
        found = store_drops(ws, CAP_4M)
    finally:
        writer.wait(timeout=30)
    if isinstance(found, DropsRefused):
        assert "out/growing.log" in found.reason and "drops.max_file" in found.reason
    else:
        (drop,) = found
        assert drop.size <= CAP_4M.max_file_bytes
        assert hashlib.sha256(drop.local_path.read_bytes()).hexdigest() == drop.sha256
    assert not [p for p in stored_files(ws) if p.name.startswith(".tmp-")]


def test_a_file_rewritten_during_collection_is_stored_under_the_hash_of_its_copy(
    ws: Path,
) -> None:
    """A daemon swaps the file between two contents (in place and by rename) as fast as it can:
    whatever the copy caught, the stored bytes hash to the recorded sha256."""
    path = ws / "out" / "swap.bin"
    contents = (b"A" * (3 * MiB), b"B" * (3 * MiB))
    path.write_bytes(contents[0])
    stop = threading.Event()

    def swap() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            if i % 2:
                path.write_bytes(contents[i % 2])  # in place: truncate and rewrite
            else:
                tmp = path.with_name(".swap")
                tmp.write_bytes(contents[i % 2])
                tmp.replace(path)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for _ in range(20):
            for drop in stored(ws, DropCaps(max_file_bytes=8 * MiB)):
                data = drop.local_path.read_bytes()
                assert hashlib.sha256(data).hexdigest() == drop.sha256
                assert len(data) == drop.size
    finally:
        stop.set()
        swapper.join()


@pytest.fixture
def tiny_store(ws: Path) -> Iterator[Path]:
    """`.mc/drops` as a 1 MiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    store = store_of(ws)
    store.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(store)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        yield store
    finally:
        subprocess.run(["umount", str(store)], check=True)


def test_a_full_disk_is_a_temporary_refusal_and_leaves_no_temp_file(
    ws: Path, tiny_store: Path
) -> None:
    (ws / "out" / "small.txt").write_text("fits")
    (ws / "out" / "big.bin").write_bytes(os.urandom(3 * MiB // 2))
    found = store_drops(ws, DropCaps())
    assert isinstance(found, DropsRefused), found
    assert found.status == "retry"
    assert "No space left on device" in found.reason
    assert list(tiny_store.iterdir()) == []  # neither temp file, nor a half-published set
    usage = os.statvfs(tiny_store)
    assert usage.f_bfree == usage.f_blocks


def test_an_intact_stored_copy_keeps_its_file_and_a_tampered_one_is_replaced(ws: Path) -> None:
    """A sandbox may have a stored drop bound by descriptor: an equal copy stored later must not
    swap the file under it (bwrap refuses such a bind); a tampered file is replaced."""
    (ws / "out" / "report.md").write_text("# Report\n")
    (first,) = stored(ws)
    inode = first.local_path.stat().st_ino
    (again,) = stored(ws)  # another run drops the same content
    assert again.local_path.stat().st_ino == inode
    first.local_path.chmod(0o600)
    first.local_path.write_text("tampered")
    (fixed,) = stored(ws)
    assert fixed.local_path.read_text() == "# Report\n"
    assert not [p for p in stored_files(ws) if p.name.startswith(".tmp-")]
