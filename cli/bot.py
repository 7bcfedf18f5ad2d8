"""`mc bot`: the reconcile loop and the Telegram bot without the dashboard (to try the bot)."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from cli.main import app, mission_context, out


@app.command()
def bot(
    resync: Annotated[
        float, typer.Option("--resync", help="Seconds between full drift checks.")
    ] = 60.0,
) -> None:
    """Reconcile on each commit and run the Telegram bot of mission.yaml's `telegram:` chat
    (token from the environment variable it names); no dashboard. Stops on SIGTERM/SIGINT."""
    from api.telegram.launch import bot_config, start_bot
    from reconciler.serve.loop import ReconcileLoop, watch_git

    ctx = mission_context()
    loop = ReconcileLoop(ctx, resync_s=resync, holder_name="mc bot")
    loop.open()
    stop = threading.Event()
    try:
        config = bot_config(loop, ctx.repo, os.environ)
    except BaseException:
        loop.close()
        raise
    service = start_bot(loop, ctx.repo, ctx.clock, config)
    watcher = threading.Thread(
        target=watch_git, args=(ctx.repo.root, loop, stop), name="watch", daemon=True
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        loop.executor.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watcher.start()
    via = f" via {config.base_url}" if config.base_url else ""
    out.print(f"Reconciling {ctx.repo.root}; Telegram bot for chat {config.chat_id}{via} (Ctrl-C)")
    try:
        loop.run(stop)
    finally:
        stop.set()
        service.stop()
        loop.close()
        watcher.join(timeout=5)
    out.print("Stopped; state is consistent and `mc bot` or `mc serve` carries on.")
