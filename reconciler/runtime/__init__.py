"""Executors: start agent processes per attempt and turn what they leave behind into Outcomes."""
