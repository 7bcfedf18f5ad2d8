"""A Bot API stand-in on loopback: what python-telegram-bot talks to in these tests.

It answers `POST /bot<token>/<method>` the way api.telegram.org does (`{"ok": true, "result":
…}`), records every call the bot makes, hands queued updates to `getUpdates` (a long poll
capped at a second), and can go down (in-flight polls are cut, the port stops listening) and
come back on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from helpers.waiting import wait_until

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Mission Control", "username": "mc_test_bot"}
STRING_FIELDS = frozenset({"text", "callback_query_id", "parse_mode", "url"})
LONG_POLL_CAP_S = 1.0


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    result: Any = None

    @property
    def message_id(self) -> int:
        return int(self.result["message_id"])

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of the inline keyboard."""
        markup = self.params.get("reply_markup") or {}
        return [
            (b["text"], b["callback_data"])
            for row in markup.get("inline_keyboard", [])
            for b in row
        ]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class BotApiStandIn:
    def __init__(self, token: str) -> None:
        self.token = token
        self.port = 0
        self.calls: list[Call] = []
        self._updates: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._next_message_id = 100
        self._next_update_id = 1
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0  # bumped on every stop: polls of an older generation are cut

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def up(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Go down: stop listening and cut every poll in flight."""
        server, self._server = self._server, None
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- what tests do -----------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for the bot's next getUpdates (an update_id is given if missing)."""
        with self._cond:
            if "update_id" not in update:
                update = {"update_id": self._next_update_id, **update}
                self._next_update_id += 1
            self._updates.append(update)
            self._cond.notify_all()
        return update

    def calls_of(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def messages(self) -> list[Call]:
        return self.calls_of("sendMessage")

    def wait_for(
        self, find: Callable[[], Any], timeout: float = 15.0, what: str = "condition"
    ) -> Any:
        """What `find` returns once it is truthy; on timeout, fail listing the calls seen."""
        return wait_until(find, timeout, what, lambda: f"calls: {[c.method for c in self.calls]}")

    # --- serving -----------------------------------------------------------------------------

    def _record(self, method: str, params: dict[str, Any]) -> Call:
        call = Call(method, params, time.monotonic())
        with self._cond:
            self.calls.append(call)
        return call

    def _answer(self, method: str, params: dict[str, Any], generation: int) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            offset = int(params.get("offset", 0) or 0)
            return self._poll(float(params.get("timeout", 0) or 0), generation, offset)
        if method == "sendMessage":
            with self._cond:
                self._next_message_id += 1
                message_id = self._next_message_id
            return self._message(message_id, params)
        if method == "editMessageText":
            return self._message(int(params["message_id"]), params)
        if method in ("answerCallbackQuery", "deleteWebhook", "setMyCommands"):
            return True
        return True

    def _message(self, message_id: int, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "supergroup" if chat_id < 0 else "private"},
            "from": BOT_USER,
            "text": params.get("text", ""),
        }
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    def _poll(self, timeout: float, generation: int, offset: int) -> list[dict[str, Any]] | None:
        """Like the Bot API: an update stays until a later poll confirms it with `offset`, so a
        poll answered to a client that has gone away (a bot being restarted) loses nothing."""
        deadline = time.monotonic() + min(timeout, LONG_POLL_CAP_S)
        with self._cond:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and generation == self._generation:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if generation != self._generation:
                return None  # went down mid-poll: the connection is cut
            return list(self._updates)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                generation = standin._generation
                prefix = f"/bot{standin.token}/"
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                if not self.path.startswith(prefix):
                    self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                method = self.path[len(prefix) :]
                params = _decode(body, self.headers.get("Content-Type", ""))
                call = standin._record(method, params)
                result = call.result = standin._answer(method, params, generation)
                if result is None:
                    self.close_connection = True
                    return  # cut: no response at all
                self._reply(200, {"ok": True, "result": result})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _decode(body: str, content_type: str) -> dict[str, Any]:
    """PTB posts form fields whose non-string values are JSON-encoded."""
    if "json" in content_type:
        value: dict[str, Any] = json.loads(body or "{}")
        return value
    params: dict[str, Any] = {}
    for key, raw in parse_qsl(body, keep_blank_values=True):
        if key in STRING_FIELDS:
            params[key] = raw
            continue
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


# --- updates as Telegram sends them -------------------------------------------------------------


def user(user_id: int, name: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name.title(), "username": name}


def chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup" if chat_id < 0 else "private", "title": "ops"}


def command_update(text: str, sender: dict[str, Any], chat_id: int) -> dict[str, Any]:
    """A message starting with a /command (with the bot_command entity Telegram adds)."""
    command = text.split()[0]
    return {
        "message": {
            "message_id": int(time.monotonic() * 1000) % 1_000_000,
            "date": int(time.time()),
            "chat": chat(chat_id),
            "from": sender,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        }
    }


def callback_update(
    data: str, sender: dict[str, Any], message: Call, query_id: str
) -> dict[str, Any]:
    """A press on an inline button of a message the bot sent."""
    return {
        "callback_query": {
            "id": query_id,
            "from": sender,
            "chat_instance": "ci-1",
            "data": data,
            "message": {
                "message_id": message.message_id,
                "date": int(time.time()),
                "chat": chat(int(message.params["chat_id"])),
                "from": BOT_USER,
                "text": message.params.get("text", ""),
            },
        }
    }
