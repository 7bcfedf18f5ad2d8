"""`mc serve`: reconcile continuously and serve the read-only dashboard (the only command that
loads the web stack)."""

from __future__ import annotations

import enum
import errno
import ipaddress
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from cli.main import TrustAnewOpt, app, mission_context, out
from specs.errors import MCError

if TYPE_CHECKING:
    import uvicorn

    from reconciler.serve.loop import ReconcileLoop
    from reconciler.serve.metrics import Metrics


class LogChoice(enum.StrEnum):
    text = "text"
    json = "json"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 4100,
    resync: Annotated[
        float, typer.Option("--resync", help="Seconds between full drift checks.")
    ] = 60.0,
    trust_anew: TrustAnewOpt = False,
    log_format: Annotated[
        LogChoice,
        typer.Option(
            "--log-format",
            help="One line per reconcile, dispatch, finished run and error: text or json.",
        ),
    ] = LogChoice.text,
) -> None:
    """Watch the repo, reconcile on each commit and on timers, run the agents, and serve the
    read-only dashboard, JSON API, /metrics and /healthz. Logs one line per reconcile,
    dispatch, finished run and error on stdout. Stops cleanly on SIGTERM/SIGINT."""
    from api.telegram.launch import start_if_configured
    from reconciler.serve.log_lines import printer
    from reconciler.serve.loop import ReconcileLoop, announce, watch_git, withdraw
    from reconciler.serve.metrics import Metrics

    _tune_for_a_long_life()
    token = _dashboard_token(host)
    # Bind before the state is opened: a port in use must stop us before any agent starts.
    listener = _listen(host, port)
    ctx = mission_context()
    metrics = Metrics()
    loop = ReconcileLoop(
        ctx,
        metrics=metrics,
        resync_s=resync,
        trust_anew=trust_anew,
        log=printer(log_format.value, _write_line),
    )
    if trust_anew:
        out.print(
            "--trust-anew: while no mission is applied, the approvers HEAD declares are trusted"
            " as they are, without checking mission.yaml's history."
        )
    loop.open()
    stop = threading.Event()
    server = _dashboard(loop, metrics, host, port, token)
    threads = [
        threading.Thread(target=server.run, args=([listener],), name="dashboard", daemon=True),
        threading.Thread(
            target=watch_git, args=(ctx.repo.root, loop, stop), name="watch", daemon=True
        ),
    ]
    _stop_on_signals(loop, stop)
    url = f"http://{host}:{port}/"
    for thread in threads:
        thread.start()
    announce(ctx.repo.mc_dir, url)
    out.print(f"Serving {ctx.repo.root} — dashboard {url} (Ctrl-C to stop)")
    bot = start_if_configured(loop, ctx.repo, ctx.clock, out.print)
    try:
        loop.run(stop)
    finally:
        server.should_exit = True
        stop.set()
        if bot is not None:
            bot.stop()
        loop.close()
        withdraw(ctx.repo.mc_dir)
        for thread in threads:
            thread.join(timeout=5)
    out.print("Stopped; state is consistent and `mc apply` or `mc serve` carries on.")


def _write_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # a log read through a pipe (systemd, docker) shows each line at once


def _listen(host: str, port: int) -> socket.socket:
    """The dashboard's listening socket, bound now (uvicorn serves on it later).

    Raises MCError (exit 1, one line) when the address cannot be bound, e.g. another
    `mc serve` holds the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = " (another mc serve? pick --port)" if exc.errno == errno.EADDRINUSE else ""
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise MCError(f"cannot listen on {host}:{port}: {why.lower()}{hint}") from None
    sock.set_inheritable(True)
    return sock


def _tune_for_a_long_life() -> None:
    import gc

    gc.set_threshold(700, 10, 10)  # a long-lived process: the default collector again
    # The reconcile loop and the dashboard share one interpreter: hand the GIL over every
    # 0.5 ms instead of 5 ms, so a busy loop delays a page by a few ms, not hundreds.
    sys.setswitchinterval(0.0005)


def _dashboard_token(host: str) -> str | None:
    """The bearer token the dashboard requires; one is needed beyond loopback."""
    token = os.environ.get("MC_DASHBOARD_TOKEN") or None
    if not _loopback(host) and token is None:
        raise MCError(
            f"--host {host} is not a loopback address: set MC_DASHBOARD_TOKEN so the dashboard"
            " requires `Authorization: Bearer <token>`"
        )
    return token


def _dashboard(
    loop: ReconcileLoop, metrics: Metrics, host: str, port: int, token: str | None
) -> uvicorn.Server:
    """The web server for the dashboard, JSON API, /metrics and /healthz (not started)."""
    import uvicorn

    from api.app import create_app
    from reconciler.engine.launch import Paths

    repo = loop.ctx.repo
    web = create_app(
        loop.open_reader,
        paths=Paths(repo.root, repo.mc_dir),
        metrics=metrics,
        token=token,
        status=loop.facts,
        allowed_hosts=sorted({host, "127.0.0.1", "localhost", "[::1]"}),
        cli_view=loop.cli_view,
    )
    return uvicorn.Server(uvicorn.Config(web, host=host, port=port, log_level="warning"))


def _stop_on_signals(loop: ReconcileLoop, stop: threading.Event) -> None:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        loop.executor.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
