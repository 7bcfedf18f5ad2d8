"""`python -m cli`: the same entry point as the `mc` script."""

from cli.main import run

run()
