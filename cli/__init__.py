"""The `mc` command line: parse options, make one call, render."""
