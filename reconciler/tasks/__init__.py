"""Task states and the transition table; workflow runs as step tasks and their status."""
