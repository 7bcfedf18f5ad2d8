"""The read-only dashboard, JSON API and Telegram bot (only started by `mc serve`)."""
