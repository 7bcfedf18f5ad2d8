"""The mission repo: reading desired state from git commits, the `.mc/` layout."""
