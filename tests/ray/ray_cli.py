"""`python ray_cli.py start ...`: Ray's own CLI, with 127.0.0.1 kept as given.

Ray swaps 127.0.0.1 for the machine's outward address (reconciler/runtime/ray_support.py
explains where); the test cluster must bind and dial loopback only, so the nodes start through
the same `keep_loopback` the control plane uses.
"""

from __future__ import annotations

import sys

from reconciler.runtime.ray_support import keep_loopback

if __name__ == "__main__":
    keep_loopback()
    from ray.scripts.scripts import main

    sys.argv = ["ray", *sys.argv[1:]]
    main()  # type: ignore[no-untyped-call]
