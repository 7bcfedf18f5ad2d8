"""The execution engine: the tick, dispatch, launches, finished runs, retry, recovery."""
