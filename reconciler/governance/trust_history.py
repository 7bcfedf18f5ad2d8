"""Read mission.yaml's history, the approvals of it and who signed them, and derive the trust
chain (governance/trust_chain.py); for plan/pipeline.py and `mc trust`.

Three or four git calls however long the history: the first-parent commits that changed
mission.yaml (bounded by HISTORY_LIMIT), their mission.yaml through one `cat-file --batch`
(parsed once per blob through the parse cache), and — only when the approver set ever changed
— every version of every approval file in the planned commit's history, then, for each approver
set that was in force, git's verdict on the signatures of the commits that wrote approvals of a
mission version (verified against that set's keys only, as signatures.py does for HEAD).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.governance.signatures import (
    FIELD_SEP,
    RECORD,
    Signature,
    TrustStore,
    build_trust,
)
from reconciler.governance.trust_chain import (
    ChainApproval,
    MissionVersion,
    TrustChain,
    derive_chain,
)
from reconciler.repo.git import git_argv, git_env
from reconciler.repo.parse_cache import ParseCache
from reconciler.repo.source import MissionRepo, RepoError
from specs.desired import MISSION_FILE
from specs.loader import ParsedDoc, parse_file

HISTORY_LIMIT = 5000  # versions of mission.yaml: beyond this the chain is not derived
APPROVAL_COMMITS_LIMIT = 50_000  # commits touching approvals/ that are read
SETS_LIMIT = 200  # distinct approver sets whose signatures are checked
REMEMBERED_LIMIT = 32  # chains kept in memory, by (repo, commit, work-tree mission)
_REMEMBERED: dict[tuple[str, str | None, str | None], TrustChain] = {}


@dataclass(frozen=True, slots=True)
class _Written:
    """A version of an approval file: the commit that wrote it, where, and its blob."""

    commit: str
    path: str
    blob: str


def read_chain(
    repo: MissionRepo, rev: str | None, now: datetime, worktree: ParsedDoc | None = None
) -> TrustChain:
    """The trust chain of commit `rev` (None: no commit yet), with the work tree's mission as
    one more version when previewing uncommitted edits. Remembered per commit in this process
    (commits are immutable; `mc serve` asks again on every reconcile while no Mission is
    applied), never on disk: a verdict file under .mc/ would be one more thing to forge."""
    commit = repo.resolve(rev) if rev is not None else None
    key = (str(repo.root), commit, worktree.digest if worktree else None)
    found = _REMEMBERED.get(key)
    if found is None:
        found = _derive(repo, commit, now, worktree)
        _REMEMBERED[key] = found
        while len(_REMEMBERED) > REMEMBERED_LIMIT:
            _REMEMBERED.pop(next(iter(_REMEMBERED)), None)
    return found


def _derive(
    repo: MissionRepo, commit: str | None, now: datetime, worktree: ParsedDoc | None
) -> TrustChain:
    cache = ParseCache.in_dir(repo.mc_dir / "cache")
    versions: list[MissionVersion] = []
    truncated = False
    if commit is not None:
        versions, truncated = _versions(repo, commit, cache)
    if worktree is not None:
        versions.append(_version(None, now, worktree))
    if not versions:
        raise RepoError(f"{repo.root}: no readable {MISSION_FILE} in the history of {commit}")
    cache.save()
    if commit is None or len({v.set_key for v in versions}) < 2:
        chain = derive_chain(versions, (), _nobody, truncated)  # the set never changed
    else:
        approvals = _approvals(repo, commit, versions, cache)
        signers = _VerifiedSigners(repo, versions)
        chain = derive_chain(versions, approvals, signers, truncated, _Earlier(repo.root))
    if commit is not None and chain.root is not None:
        foreign = _foreign_mission_commit(repo.root, commit, chain.root, cache)
        chain = dataclasses.replace(chain, foreign=foreign) if foreign else chain
        cache.save()
    return chain


def _foreign_mission_commit(root: Path, commit: str, first: str, cache: ParseCache) -> str | None:
    """A commit in `commit`'s history whose mission.yaml declares approvers but that does
    not descend from `first` (the first-parent line's first trusted version), or None. An
    orphan branch that declares its own approvers and merges the real history as its
    *second* parent is a fast-forward of it, yet its first-parent line starts at that orphan:
    the first approver set of the real history must not be passed over. (A branch merged
    from before the first approvers, with none declared, is no rival.)"""
    touching = _git(
        root, "rev-list", "--full-history", commit, f"^{first}", "--", MISSION_FILE
    ).split()
    if not touching:
        return None
    descendants = set(_git(root, "rev-list", "--ancestry-path", f"{first}..{commit}").split())
    outside = [c.decode() for c in touching if c not in descendants]
    blobs = _cat([f"{c}:{MISSION_FILE}" for c in outside], root)
    for sha in outside:
        found = blobs.get(f"{sha}:{MISSION_FILE}")
        docs = _parsed(MISSION_FILE, found, cache) if found else []
        if any(d.kind == "Mission" and d.spec.get("approvers") for d in docs):
            return sha
    return None


class _Earlier:
    """Which approval commits a commit already has in its history (one `git rev-list` of the
    commits touching approvals/ per commit asked about)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.known: dict[str, frozenset[str]] = {}

    def __call__(self, anchor: str, commits: frozenset[str]) -> frozenset[str]:
        if anchor not in self.known:
            out = _git(self.root, "rev-list", "--full-history", anchor, "--", "approvals/")
            self.known[anchor] = frozenset(out.decode().split())
        return commits & self.known[anchor]


def _nobody(set_key: str, commits: frozenset[str]) -> dict[str, str]:
    return {}


def _git(root: Path, *args: str, data: bytes | None = None, config: Sequence[str] = ()) -> bytes:
    proc = subprocess.run(
        git_argv(root, *args, config=config),
        input=data,
        capture_output=True,
        env=git_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise RepoError(f"git {args[0]}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _versions(
    repo: MissionRepo, commit: str, cache: ParseCache
) -> tuple[list[MissionVersion], bool]:
    """mission.yaml as each first-parent commit that changed it has it, oldest first; and
    whether the history is longer than HISTORY_LIMIT."""
    out = _git(
        repo.root,
        "log",
        "--first-parent",
        f"--max-count={HISTORY_LIMIT + 1}",
        f"--format=%H{FIELD_SEP}%ct",
        commit,
        "--",
        MISSION_FILE,
    ).decode()
    commits = [line.split(FIELD_SEP) for line in out.splitlines() if line]
    truncated = len(commits) > HISTORY_LIMIT
    commits = list(reversed(commits[:HISTORY_LIMIT]))
    blobs = _cat([f"{sha}:{MISSION_FILE}" for sha, _ in commits], repo.root)
    versions = []
    for sha, ctime in commits:
        found = blobs.get(f"{sha}:{MISSION_FILE}")
        docs = _parsed(MISSION_FILE, found, cache) if found else []
        mission = next((d for d in docs if d.kind == "Mission"), None)
        if mission is not None:  # deleted or unparseable: never applied, changes nothing
            when = datetime.fromtimestamp(int(ctime), UTC).replace(tzinfo=None)
            versions.append(_version(sha, when, mission))
    return versions, truncated


def _version(commit: str | None, when: datetime, doc: ParsedDoc) -> MissionVersion:
    return MissionVersion(commit, when, doc.name, doc.digest, doc.spec, doc.labels)


def _cat(names: Sequence[str], root: Path) -> dict[str, tuple[str, bytes]]:
    """`cat-file --batch` of object names: name -> (blob id, content); missing ones left out."""
    if not names:
        return {}
    out = _git(root, "cat-file", "--batch", data="\n".join(names).encode() + b"\n")
    found: dict[str, tuple[str, bytes]] = {}
    pos = 0
    for name in names:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3 or header[1] != b"blob":
            continue  # "<name> missing", or not a file
        size = int(header[2])
        found[name] = (header[0].decode(), out[pos : pos + size])
        pos += size + 1
    return found


def _parsed(path: str, blob: tuple[str, bytes], cache: ParseCache) -> list[ParsedDoc]:
    """The documents of a blob, through the parse cache; [] when it does not parse."""
    sha, data = blob
    cached = cache.get(sha, path)
    if cached is not None:
        return cached
    docs, problems = parse_file(path, data)
    if problems:
        return []
    cache.put(sha, docs)
    return docs


def _approvals(
    repo: MissionRepo, commit: str, versions: Sequence[MissionVersion], cache: ParseCache
) -> list[ChainApproval]:
    """Every approval of a mission version that any commit in `commit`'s history wrote."""
    wanted = {(f"Mission/{v.name}", v.digest) for v in versions}
    written = _written_approvals(repo.root, commit)
    blobs = _cat(sorted({w.blob for w in written}), repo.root)
    found: list[ChainApproval] = []
    for w in written:
        blob = blobs.get(w.blob)
        if blob is None or b"Mission/" not in blob[1]:
            continue  # not an approval of a Mission: no need to parse it
        for doc in _parsed(w.path, blob, cache):
            target, digest = doc.spec.get("target"), doc.spec.get("digest")
            if doc.kind == "Approval" and (target, digest) in wanted:
                decision = str(doc.spec.get("decision", "approve"))
                found.append(ChainApproval(w.commit, w.path, str(target), str(digest), decision))
    cache.save()
    return found


def _written_approvals(root: Path, commit: str) -> list[_Written]:
    """(commit, path, blob) of every approval file version a non-merge commit added or changed;
    a merge is not credited with what its branch wrote (the branch's commit is)."""
    out = _git(
        root,
        "log",
        f"--max-count={APPROVAL_COMMITS_LIMIT}",
        f"--format={RECORD}%H",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        commit,
        "--",
        "approvals/",
        config=["-c", "core.quotePath=false"],
    ).decode(errors="replace")
    written = []
    for record in out.split(RECORD)[1:]:
        sha, _, rest = record.partition("\n")
        for line in rest.splitlines():
            meta, _, path = line.partition("\t")
            fields = meta.split()
            if line.startswith(":") and len(fields) == 5 and fields[4] != "D":
                written.append(_Written(sha.strip(), path, fields[3]))
    return written


class _VerifiedSigners:
    """Who signed which approval commit, per approver set: git asked once per set and commit,
    only about the approvals of a change being judged (each check runs ssh-keygen or gpg)."""

    def __init__(self, repo: MissionRepo, versions: Sequence[MissionVersion]) -> None:
        self.repo = repo
        self.sets = {v.set_key: v for v in versions if v.approvers}
        self.known: dict[str, dict[str, str | None]] = {}

    def __call__(self, set_key: str, commits: frozenset[str]) -> dict[str, str]:
        known = self.known.setdefault(set_key, {})
        version = self.sets.get(set_key)
        missing = sorted(c for c in commits if c not in known)
        if version is not None and missing and len(self.known) <= SETS_LIMIT:
            approvers = list(version.mission.approvers)
            trust = build_trust(approvers, self.repo.mc_dir / "trust" / "chain" / set_key[:16])
            names = frozenset(a.name for a in approvers)
            found = _signed_by(self.repo.root, missing, trust, names)
            known.update({c: found.get(c) for c in missing})
        return {c: who for c in commits if (who := known.get(c)) is not None}


def _signed_by(
    root: Path, commits: Iterable[str], trust: TrustStore, names: frozenset[str]
) -> dict[str, str]:
    """commit -> the approver in `names` whose key made its good signature (git's verdict)."""
    fmt = RECORD + FIELD_SEP.join(["%H", "%G?", "%GS", "%GF", "%GP", "%GK"])
    proc = subprocess.run(
        git_argv(
            root,
            "log",
            "--no-walk=unsorted",
            "--stdin",
            f"--format={fmt}",
            config=["-c", f"gpg.ssh.allowedSignersFile={trust.allowed_signers}"],
        ),
        input="\n".join(commits).encode() + b"\n",
        capture_output=True,
        env=git_env({"GNUPGHOME": str(trust.gnupg_home)}),
        check=False,
    )
    signed: dict[str, str] = {}
    for record in proc.stdout.decode(errors="replace").split(RECORD)[1:]:
        commit, status, signer, fpr, primary, key = record.strip("\n").split(FIELD_SEP)
        sig = _signature(commit, status, signer, fpr or key, primary)
        who = trust.approver_for(sig, names)
        if who is not None:
            signed[commit] = who
    return signed


def _signature(commit: str, status: str, signer: str, key: str, primary: str) -> Signature:
    return Signature(commit, status, signer, key, primary, datetime(1970, 1, 1))
