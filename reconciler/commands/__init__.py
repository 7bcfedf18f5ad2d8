"""One module per group of `mc` commands; what `cli/` and `api/` call."""
