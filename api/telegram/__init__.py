"""The Telegram bot of `mc serve`: approval requests, commands and notifications (the only code
that talks to Telegram; python-telegram-bot loads only when a mission configures a chat).

    service.py        the bot's thread: PTB polling, the outbox, the periodic sync
    bot.py            PTB adapters: the Application, update de-duplication, buttons, messenger
    chat_commands.py  the slash commands (/status, /approve, /pause, …) as PTB handlers
    core.py           the sync (requests to post, notifications to send) over the parts below
    approval_desk.py  approval requests posted, and decisions judged and recorded
    operator.py       /status and /spend reports, /pause, /resume, /quarantine
    link.py           what the parts share: the serve loop (reads, requests), clock, chat
    awaiting.py | requests.py | notify.py | render.py | outbox.py   pure pieces and the queue
"""
