"""Helpers for the Telegram tests: a real mission repo, the real serve loop, the real bot.

The mission declares approvers with Telegram ids and SSH keys and names the stand-in's
`base_url`; the ReconcileLoop runs in a thread (open() + run(stop)) over a real DuckDB file;
the bot (python-telegram-bot) polls the stand-in. Commits wake the loop as the watcher would.
Git, YAML, waiting and the repo builder come from `helpers` (re-exported for the tests that
import them from here); the fixtures are defined here and exposed by this folder's conftest.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bot_api_standin import BotApiStandIn, Call, callback_update, command_update, user
from helpers.agents import PY as PY
from helpers.agents import done_agent_code
from helpers.git import run
from helpers.mission_repo import GitRepo
from helpers.waiting import wait_until as wait_until

from api.telegram.config import BotSettings
from api.telegram.launch import bot_config, start_bot
from api.telegram.service import BotService
from reconciler.commands.context import MissionContext, utcnow
from reconciler.serve.loop import ReconcileLoop
from state.records import ApprovalRow, Event, PendingAction

TOKEN = "123456:test-token"
TOKEN_ENV = "MC_TG_TEST_TOKEN"
CHAT = -100777
ALICE, BOB, STRANGER = user(111, "alice"), user(222, "bob"), user(999, "mallory")

AGENT_CODE = done_agent_code(cost_usd=0.01)

FAST = BotSettings(
    poll_timeout_s=1.0,
    sync_interval_s=0.1,
    quiet_s=0.8,
    max_hold_s=8.0,
    per_minute=6,
    decision_timeout_s=10.0,
    send_attempts=40,
    backoff_initial_s=0.1,
    backoff_max_s=0.5,
    connect_timeout_s=2.0,
    read_timeout_s=3.0,
)


@dataclass(frozen=True)
class Key:
    """An SSH signing key: how mission.yaml declares it and how git signs with it."""

    name: str
    public: str
    path: str  # the public key file; the private key sits beside it


def ssh_key(name: str, directory: Path) -> Key:
    key = directory / f"{name}_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)])
    pub = key.with_name(key.name + ".pub")
    return Key(name, pub.read_text().strip(), str(pub))


class TgRepo(GitRepo):
    """A mission repo declaring alice and bob (Telegram ids 111 and 222, SSH keys)."""

    def __init__(self, root: Path, keys: dict[str, Key], base_url: str) -> None:
        super().__init__(root)
        self.keys, self.base_url = keys, base_url
        self.init(branch="main")
        self.approvers = [
            {"name": "alice", "ssh_keys": [keys["alice"].public], "telegram_ids": [111]},
            {"name": "bob", "ssh_keys": [keys["bob"].public], "telegram_ids": [222]},
        ]
        self.mission()

    def mission(self, extra_approvers: list[dict[str, Any]] | None = None, **spec: Any) -> None:
        spec = {
            "approvers": [*self.approvers, *(extra_approvers or [])],
            "policy": {"approval_ttl": "1h"},
            "telegram": {
                "chat_id": CHAT,
                "token": {"from_env": TOKEN_ENV},
                "base_url": self.base_url,
            },
            **spec,
        }
        self.write_doc("mission.yaml", "Mission", "ops", spec)

    def agent(self, name: str, version: str = "v1", **spec: Any) -> None:
        """A one-line agent; a different `version` changes its command (a HIGH change)."""
        spec.setdefault("command", [PY, "-c", AGENT_CODE, version])
        super().agent(name, **spec)

    def commit(self, message: str = "edit", signer: Key | None = None) -> str:
        """Commit every change, signed with `signer`'s SSH key (None: unsigned); the new HEAD."""
        self.git("add", "-A")
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signer.path}"] if signer else []
        self.git(*sign, "commit", *(["-S"] if signer else []), "-q", "-m", message)
        return self.head()

    def approval(self, name: str, target: str, digest: str, signer: Key) -> None:
        spec = {"target": target, "digest": digest, "decision": "approve", "reason": "checked"}
        self.write_doc(f"approvals/{name}.yaml", "Approval", name, spec)
        self.commit(f"Approve {target}", signer)


@dataclass
class Clock:
    """The bot's clock: real time plus an offset a test may move forward."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


class Served:
    """The serve loop in a thread and the bot beside it, against the stand-in."""

    def __init__(self, repo: TgRepo, standin: BotApiStandIn) -> None:
        self.repo, self.standin = repo, standin
        self.clock = Clock()
        self.stop = threading.Event()
        self.loop = ReconcileLoop(MissionContext.at(repo.root), resync_s=5.0)
        self.loop.open()
        self._thread = threading.Thread(target=self.loop.run, args=(self.stop,), daemon=True)
        self.bot: BotService | None = None
        self._queries = 0

    def start(self, wait_ready: bool = True) -> Served:
        # as `mc serve` does: read the configuration before the loop runs (it may parse HEAD)
        config = bot_config(self.loop, self.loop.ctx.repo, {TOKEN_ENV: TOKEN})
        self.bot = start_bot(self.loop, self.loop.ctx.repo, self.clock, config, FAST)
        self._thread.start()
        if wait_ready:
            assert self.bot.ready.wait(15), "the bot did not start polling"
        return self

    def restart_bot(self) -> None:
        """A new bot beside the same loop (what a restart of `mc serve` gives the bot)."""
        assert self.bot is not None
        self.bot.stop()
        config = bot_config(self.loop, self.loop.ctx.repo, {TOKEN_ENV: TOKEN})
        self.bot = start_bot(self.loop, self.loop.ctx.repo, self.clock, config, FAST)
        assert self.bot.ready.wait(15), "the bot did not start polling again"

    def close(self) -> None:
        if self.bot is not None:
            self.bot.stop()
        self.stop.set()
        self.loop.executor.wake()  # as `mc serve` does on SIGTERM
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the serve loop did not stop"
        self.loop.close()

    # --- driving ------------------------------------------------------------------------------

    def commit(self, message: str = "edit", signer: Key | None = None) -> str:
        sha = self.repo.commit(message, signer)
        self.loop.notice_commit()
        return sha

    def notice(self) -> None:
        self.loop.notice_commit()

    def press(
        self, who: dict[str, Any], request: Call, decision: str = "approve"
    ) -> dict[str, Any]:
        data = next(d for _, d in request.buttons if d.startswith(decision + ":"))
        self._queries += 1
        return self.standin.push(callback_update(data, who, request, f"q{self._queries}"))

    def say(self, who: dict[str, Any], text: str, chat_id: int = CHAT) -> None:
        self.standin.push(command_update(text, who, chat_id))

    def answer_to(self, update: dict[str, Any], timeout: float = 15.0) -> str:
        """The answerCallbackQuery text for this button press."""
        qid = update["callback_query"]["id"]
        found = self.standin.wait_for(
            lambda: [
                c
                for c in self.standin.calls_of("answerCallbackQuery")
                if c.params.get("callback_query_id") == qid
            ],
            timeout,
            f"an answer to {qid}",
        )
        return str(found[0].params.get("text", ""))

    def reply(self, contains: str, timeout: float = 15.0, after: int = 0) -> Call:
        """The first message sent (after the first `after` messages) containing the text."""

        def find() -> Call | None:
            return next((c for c in self.standin.messages()[after:] if contains in c.text), None)

        found: Call = self.standin.wait_for(find, timeout, f"a message containing {contains!r}")
        return found

    def requests_for(self, target: str) -> list[Call]:
        return [
            c
            for c in self.standin.messages()
            if "Approval needed" in c.text and f" {target}\n" in c.text
        ]

    def request_for(self, target: str, digest: str | None = None, timeout: float = 15.0) -> Call:
        def find() -> Call | None:
            found = [
                c for c in self.requests_for(target) if digest is None or digest[:19] in c.text
            ]
            return found[-1] if found else None

        call: Call = self.standin.wait_for(find, timeout, f"an approval request for {target}")
        return call

    def edits_of(self, message: Call) -> list[str]:
        return [
            str(c.params.get("text", ""))
            for c in self.standin.calls_of("editMessageText")
            if c.params.get("message_id") == message.message_id
        ]

    # --- reading the state ------------------------------------------------------------------------

    def read(self, fn: Callable[[Any], Any]) -> Any:
        with self.loop.open_reader() as (reader, _):
            return fn(reader)

    def pending(self, target: str) -> PendingAction | None:
        found: list[PendingAction] = self.read(
            lambda r: [p for p in r.pending() if p.key == target]
        )
        return found[0] if found else None

    def applied_digest(self, target: str) -> str | None:
        kind, name = target.split("/", 1)
        res = self.read(lambda r: r.resource(kind, name))
        return res.digest if res is not None else None

    def events(self, kind: str) -> list[Event]:
        found: list[Event] = self.read(lambda r: r.events(limit=100_000))
        return [e for e in found if e.kind == kind]

    def approvals(self, channel: str | None = None) -> list[ApprovalRow]:
        rows: list[ApprovalRow] = self.read(lambda r: r.approvals(channel=channel))
        return rows

    def task_state(self, name: str) -> str | None:
        rows = self.read(lambda r: r.tasks([name]))
        return rows[0].state if rows else None


@contextmanager
def served(repo: TgRepo, standin: BotApiStandIn, wait_ready: bool = True) -> Iterator[Served]:
    s = Served(repo, standin)
    try:
        yield s.start(wait_ready)
    finally:
        s.close()


# --- fixtures (exposed by conftest.py) ---------------------------------------------------------


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SSH agent (sign with the key files given) and no proxy: the stand-in is on loopback."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    directory = tmp_path_factory.mktemp("ssh-keys")
    return {name: ssh_key(name, directory) for name in ("alice", "bob", "carol")}


@pytest.fixture
def standin() -> Iterator[BotApiStandIn]:
    server = BotApiStandIn(TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def repo(tmp_path: Path, keys: dict[str, Key], standin: BotApiStandIn) -> TgRepo:
    """alice and bob approve; one agent, `writer`; committed (not applied yet)."""
    mission = TgRepo(tmp_path / "mission", keys, standin.base_url)
    mission.agent("writer")
    mission.commit("Mission with a Telegram chat")
    return mission
