"""The dashboard's outer wall (ASGI middleware): read-only methods, an optional bearer token,
and security headers on every response, errors included (a 500 is answered here, inside the
headers). Installed by `create_app`."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = ("GET", "HEAD")
# Paths that answer without the token: a load balancer's health check carries none.
OPEN_PATHS = frozenset({"/healthz"})

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        b" frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def _with_security_headers(send: Send) -> Send:
    """Add the headers a response did not set itself (a drop sets a stricter CSP)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _head_only(receive: Receive, send: Send) -> tuple[Receive, Send]:
    """Run a HEAD as the GET it stands for, send only the head and stop a stream at once."""
    done = False
    asked = False

    async def head_receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def head_send(message: Message) -> None:
        nonlocal done
        if message["type"] == "http.response.start":
            await send(message)
        elif message["type"] == "http.response.body" and not done:
            done = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return head_receive, head_send


async def _plain(
    send: Send, status: int, text: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = text.encode()
    extra = list(headers)
    kind = (
        []
        if any(k == b"content-type" for k, _ in extra)
        else [(b"content-type", b"text/plain; charset=utf-8")]
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *kind,
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _host(scope: Scope) -> str:
    """The Host header without its port ("[::1]:4100" -> "[::1]")."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"host":
            host: str = value.decode("latin-1").strip().lower()
            return host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return ""


class Guard:
    """405 for anything but GET/HEAD, 400 for a Host not served (DNS rebinding), 401 without
    the bearer token, and the security headers on everything."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None = None,
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.hosts = {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None or scope["path"] in OPEN_PATHS:
            return True
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
                    return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        method = scope["method"]
        if method not in ALLOWED_METHODS:
            await _plain(send, 405, "read-only: only GET and HEAD\n", [(b"allow", b"GET, HEAD")])
            return
        if self.hosts is not None and _host(scope) not in self.hosts:
            await _plain(send, 400, "unknown host: this dashboard is served under another name\n")
            return
        if not self._authorized(scope):
            await _plain(
                send,
                401,
                "unauthorized: send Authorization: Bearer <token>\n",
                [(b"www-authenticate", b'Bearer realm="mc"')],
            )
            return
        if method == "HEAD":
            receive, send = _head_only(receive, send)
            scope = {**scope, "method": "GET"}
        await _answer_errors_too(self.app, scope, receive, send)


async def _answer_errors_too(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run the app; an exception it lets out is answered here, before Starlette's outer error
    middleware would answer it without the security headers (that middleware sits outside
    every user middleware). The exception is raised on, so the server still logs it."""
    started = False

    async def tracked(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, tracked)
    except Exception:
        if not started:
            if scope["path"].startswith("/api/"):
                body = '{"detail": "internal error: the server logged the details"}'
                kind = (b"content-type", b"application/json")
                await _plain(send, 500, body, [kind])
            else:
                await _plain(send, 500, "internal error: the server logged the details\n")
        raise
