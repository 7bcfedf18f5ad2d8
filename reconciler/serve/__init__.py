"""`mc serve`: the reconcile loop, the git watcher, requests from the bot, metrics."""
