"""Read the desired state of a commit (or the work tree); for commands/, serve/ and engine/."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import posixpath
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.repo.git import git_argv, git_env
from reconciler.repo.parse_cache import ParseCache
from specs.agent_code import literal_prefix, references
from specs.desired import Desired, build_desired
from specs.errors import MCError, SpecError, SpecProblem
from specs.loader import ParsedDoc, parse_file
from specs.locate import locate

APPROVALS_DIR = "approvals/"
SYMLINK_MODE = "120000"
LINK_ROUNDS = 8  # links to links (outside the folders first read) followed at most this deep
SPEC_DIRS = ("mission.yaml", "agents", "tasks", "workflows", "runs", "approvals")


class RepoError(MCError):
    """The repository cannot serve as a mission repo (not git, no commits, bad revision)."""


@dataclass(frozen=True, slots=True)
class Blob:
    path: str
    sha: str


class MissionRepo:
    """A mission repository on disk: where it is, where its state lives, how to read a commit."""

    def __init__(self, root: Path, state_path: Path | None = None) -> None:
        self.root = root.resolve()
        if not self.root.is_dir():
            raise RepoError(f"{root}: no such directory")
        top = self._git("rev-parse", "--show-toplevel", check=False)
        if top is None:
            raise RepoError(f"{root}: not a git repository (create one with `mc init {root}`)")
        self.root = Path(top.strip())
        self.mc_dir = self.root / ".mc"
        self.state_path = state_path or self.mc_dir / "state.duckdb"

    # --- git plumbing (one subprocess per question; GitPython is used for writes) ---------

    def _git(self, *args: str, check: bool = True, data: bytes | None = None) -> str | None:
        out = self._git_bytes(*args, check=check, data=data)
        return out.decode() if out is not None else None

    def _git_bytes(self, *args: str, check: bool = True, data: bytes | None = None) -> bytes | None:
        proc = subprocess.run(
            git_argv(self.root, *args), input=data, capture_output=True, check=False, env=git_env()
        )
        if proc.returncode != 0:
            if check:
                raise RepoError(f"git {args[0]}: {proc.stderr.decode().strip()}")
            return None
        return proc.stdout

    def resolve(self, rev: str) -> str:
        sha = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if sha is None:
            if rev == "HEAD":
                raise RepoError(
                    f"{self.root}: no commits yet; commit the mission (or preview with --worktree)"
                )
            raise RepoError(f"{self.root}: unknown revision {rev!r}")
        return sha.strip()

    def ensure_mc_ignored(self) -> None:
        """Keep .mc/ (state, cache, workspaces) out of git without touching tracked files."""
        git_dir = self._git("rev-parse", "--git-common-dir")
        assert git_dir is not None
        exclude = (self.root / git_dir.strip()).resolve() / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text() if exclude.exists() else ""
        if ".mc/" not in text.split():
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + ".mc/\n")

    def dirty_paths(self) -> list[str]:
        """Uncommitted changes to mission files (they are not part of a committed plan)."""
        out = self._git("status", "--porcelain", "-z", "--untracked-files=all", "--", *SPEC_DIRS)
        fields = iter((out or "").split("\0"))
        paths = set()
        for entry in fields:
            if len(entry) > 3:
                paths.add(entry[3:])
                if entry[0] in "RC":  # with -z a rename's source follows as its own field
                    paths.add(next(fields, ""))
        return sorted(p for p in paths if _is_spec_path(p))

    def tree_blobs(self, commit: str) -> list[Blob]:
        out = self._git("ls-tree", "-r", "-z", "--full-tree", commit, "--", *SPEC_DIRS) or ""
        blobs = []
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            _mode, kind, sha = meta.split()
            if kind == "blob" and _is_spec_path(path):
                blobs.append(Blob(path, sha))
        return blobs

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Contents of many blobs through one `git cat-file --batch`."""
        if not shas:
            return {}
        out = self._git_bytes("cat-file", "--batch", data="\n".join(shas).encode() + b"\n")
        assert out is not None
        result, pos = {}, 0
        for sha in shas:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            size = int(header[2])
            result[sha] = out[header_end + 1 : header_end + 1 + size]
            pos = header_end + 1 + size + 1
        return result

    def tree_files(self, commit: str, under: Sequence[str] = ()) -> dict[str, str]:
        """{path: blob id} of every file in the commit (symlinks too; submodules are not
        files), or of those at or under the paths `under` names."""
        return {path: sha for _mode, path, sha in self._tree_entries(commit, under)}

    def _tree_entries(self, commit: str, under: Sequence[str]) -> list[tuple[str, str, str]]:
        """(mode, path, blob id) of the commit's files at or under `under` (all when empty)."""
        specs = ["--", *(f":(literal){p}" for p in under)] if under else []
        out = self._git("ls-tree", "-r", "-z", "--full-tree", commit, *specs) or ""
        entries = []
        for entry in out.split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                mode, kind, sha = meta.split()
                if kind == "blob":
                    entries.append((mode, path, sha))
        return entries

    def _files_and_links(
        self, commit: str | None, under: Sequence[str]
    ) -> tuple[Mapping[str, str], dict[str, str]]:
        """The files at or under `under` ({path: blob id}) and what each symbolic link among
        them holds (its target, as written), in the commit or (None) the work tree."""
        if commit is None:
            files = self.worktree_blobs(under)
            links = {p: os.readlink(self.root / p) for p in files if (self.root / p).is_symlink()}
            return files, links
        entries = self._tree_entries(commit, under)
        linked = {path: sha for mode, path, sha in entries if mode == SYMLINK_MODE}
        texts = self.read_blobs(sorted(set(linked.values())))
        links = {p: os.fsdecode(texts[sha]) for p, sha in linked.items()}
        return {path: sha for _mode, path, sha in entries}, links

    def worktree_blobs(self, under: Sequence[str] = ()) -> WorkTreeBlobs:
        """{path: blob id} of the work tree's files that a commit would hold (tracked, or
        untracked and not ignored; at or under `under`, if given), hashed as `git add` would
        store them (no filters)."""
        specs = ["--", *(f":(literal){p}" for p in under)] if under else []
        args = ("ls-files", "-z", "--cached", "--others", "--exclude-standard", *specs)
        out = self._git_bytes(*args)
        paths = {p.decode("utf-8", "surrogateescape") for p in (out or b"").split(b"\0") if p}
        return WorkTreeBlobs(self.root, paths)

    def worktree_files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for top in SPEC_DIRS:
            base = self.root / top
            paths = [base] if base.is_file() else sorted(base.rglob("*")) if base.is_dir() else []
            for p in paths:
                rel = p.relative_to(self.root).as_posix()
                if p.is_file() and _is_spec_path(rel):
                    files[rel] = p.read_bytes()
        return files

    # --- desired state --------------------------------------------------------------------

    def desired(self, rev: str | None = "HEAD", *, report_dirty: bool = True) -> Desired:
        """Parse and validate the mission at `rev` (None: the work tree); raise SpecError."""
        if rev is None:
            files = self.worktree_files()
            blobs = [Blob(p, _blob_sha(d)) for p, d in files.items()]
            commit, dirty = None, []
            contents = {b.sha: files[b.path] for b in blobs}
        else:
            commit = self.resolve(rev)
            blobs = self.tree_blobs(commit)
            dirty = self.dirty_paths() if rev == "HEAD" and report_dirty else []
            contents = {}
        if not any(b.path == "mission.yaml" for b in blobs):
            where = f"commit {commit[:12]}" if commit else "the work tree"
            hint = "create it with `mc init`, then commit"
            raise SpecError([SpecProblem("mission.yaml", f"missing in {where}", hint=hint)])
        docs, malformed = self._parse(blobs, contents)
        texts = {b.path: b.sha for b in blobs}

        def locator(path: str, index: int, loc: Sequence[str | int]) -> tuple[int, int] | None:
            data = contents.get(texts[path]) or self.read_blobs([texts[path]])[texts[path]]
            return locate(data.decode("utf-8", "replace"), index, loc)

        tree, links = self._code_tree(commit, docs)
        return build_desired(commit, docs, locator, dirty, tuple(malformed), tree, links)

    def _code_tree(
        self, commit: str | None, docs: list[ParsedDoc]
    ) -> tuple[Mapping[str, str], dict[str, str]]:
        """The files agents' code is looked up in: none when no agent names code, else those
        under the patterns' literal prefixes (the whole tree when one starts with a glob);
        and the symbolic links among them that point inside the repo, with the files they
        point to added (a link's blob is only its target's name: what the agent runs through
        it is the file behind it)."""
        refs = [r for d in docs if d.kind == "Agent" for r in references(d.spec)]
        if not refs:
            return {}, {}
        prefixes = {literal_prefix(r.pattern) for r in refs}
        under: list[str] = [] if "" in prefixes else sorted(prefixes)
        parts: list[Mapping[str, str]] = []
        links: dict[str, str] = {}
        read: list[str] = []
        for _ in range(LINK_ROUNDS):
            files, found = self._files_and_links(commit, under)
            parts.append(files)
            read += under
            targets = {p: t for p, text in found.items() if (t := _inside(p, text)) is not None}
            links.update(targets)
            under = sorted({t for t in targets.values() if read and not _covered(t, read)})
            if not under:
                break
        if commit is None:
            paths = {p for part in parts for p in part}
            return WorkTreeBlobs(self.root, paths), links
        return {p: sha for part in parts for p, sha in part.items()}, links

    def _parse(
        self, blobs: list[Blob], contents: dict[str, bytes]
    ) -> tuple[list[ParsedDoc], list[SpecProblem]]:
        """Documents of every file, and the problems of approval files on their own: an
        approver's malformed file is rejected with a reason, it does not stop the mission."""
        cache = ParseCache.in_dir(self.mc_dir / "cache")
        missing = [b.sha for b in blobs if b.sha not in cache and b.sha not in contents]
        contents.update(self.read_blobs(sorted(set(missing))))
        docs: list[ParsedDoc] = []
        problems: list[SpecProblem] = []
        fresh = parse_many([(b.path, contents[b.sha]) for b in blobs if b.sha not in cache])
        for blob in blobs:
            cached = cache.get(blob.sha, blob.path)
            if cached is None:
                parsed, found = fresh[blob.path]
                problems.extend(found)
                if not found:
                    cache.put(blob.sha, parsed)
                docs.extend(parsed)
            else:
                docs.extend(cached)
        malformed = [p for p in problems if p.path.startswith(APPROVALS_DIR)]
        malformed += [
            SpecProblem(d.path, f"only Approval documents belong in {APPROVALS_DIR}")
            for d in docs
            if d.path.startswith(APPROVALS_DIR) and d.kind != "Approval"
        ]
        fatal = [p for p in problems if not p.path.startswith(APPROVALS_DIR)]
        if fatal:
            raise SpecError(fatal)
        cache.save()
        bad = {p.path for p in malformed}
        return [d for d in docs if d.path not in bad], malformed


def blob_ids(root: Path, commit: str, paths: Sequence[str]) -> dict[str, str]:
    """{path: blob id} of the files `paths` in `commit` (a path missing there is left out);
    for the engine, which checks that a tree holds the code an agent was approved with."""
    specs = [f":(literal){p}" for p in paths]
    proc = subprocess.run(
        git_argv(root, "ls-tree", "-r", "-z", "--full-tree", commit, "--", *specs),
        capture_output=True,
        check=False,
        env=git_env(),
    )
    found = {}
    for entry in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            _mode, kind, sha = meta.split()
            if kind == "blob" and path in paths:
                found[path] = sha
    return found


PARALLEL_FROM = 2000  # files; below this a worker costs more than it saves


def parse_many(
    files: list[tuple[str, bytes]],
) -> dict[str, tuple[list[ParsedDoc], list[SpecProblem]]]:
    """parse_file over many files; a cold load of a big repo uses every core (parsing YAML is
    CPU-bound and the GIL keeps threads from helping), in forked workers that already have
    every module imported."""
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < PARALLEL_FROM or workers < 2 or "fork" not in mp.get_all_start_methods():
        return {path: parse_file(path, data) for path, data in files}
    chunks = [files[i::workers] for i in range(workers)]
    with mp.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_parse_chunk, chunks)
    return {path: result for part in parts for path, result in part}


def _parse_chunk(
    files: list[tuple[str, bytes]],
) -> list[tuple[str, tuple[list[ParsedDoc], list[SpecProblem]]]]:
    return [(path, parse_file(path, data)) for path, data in files]


class WorkTreeBlobs(Mapping[str, str]):
    """Blob ids of work-tree files, each hashed on first look (most are never asked for)."""

    def __init__(self, root: Path, paths: set[str]) -> None:
        self.root = root
        self.paths = {p for p in paths if _is_file_or_link(root / p)}  # listed, not deleted
        self.hashed: dict[str, str] = {}

    def __getitem__(self, path: str) -> str:
        if path not in self.paths:
            raise KeyError(path)
        if path not in self.hashed:
            full = self.root / path
            # git stores a symlink as a blob of its target; a file as its bytes
            data = os.fsencode(os.readlink(full)) if full.is_symlink() else full.read_bytes()
            self.hashed[path] = _blob_sha(data)
        return self.hashed[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def _inside(link: str, target: str) -> str | None:
    """The repo path a symbolic link at `link` points to, or None when it leads out of the
    repo (an absolute target, or one climbing above the root): a system file, not code."""
    if not target or target.startswith("/") or "\0" in target:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    return None if joined in (".", "..") or joined.startswith("../") else joined


def _covered(path: str, read: Sequence[str]) -> bool:
    return any(path == top or path.startswith(top + "/") for top in read)


def _is_file_or_link(path: Path) -> bool:
    return path.is_symlink() or path.is_file()


def _is_spec_path(path: str) -> bool:
    return path.endswith((".yaml", ".yml")) and (path == "mission.yaml" or "/" in path)


def _blob_sha(data: bytes) -> str:
    """The id git gives these bytes as a blob, so work-tree files share the commit cache."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
