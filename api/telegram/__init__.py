"""The Telegram bot of `mc serve`: approval requests, commands and notifications (the only code
that talks to Telegram; python-telegram-bot loads only when a mission configures a chat)."""
