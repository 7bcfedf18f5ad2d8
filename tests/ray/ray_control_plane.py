"""A control plane in a process of its own, for the restart test: joins the cluster, launches
one run through the Ray executor, prints its run id, then idles until it is killed.

Usage: python ray_control_plane.py ADDRESS NAMESPACE ROOT MARKS
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ray_harness import RayAgents

from reconciler.runtime.ray_executor import RayExecutor
from reconciler.runtime.sandbox import Mount

RESTART_AGENT = """
Path(MARKS, os.environ["MC_RUN_ID"]).write_text("started")
time.sleep(4)
(OUT / "late.txt").write_text("made after the restart")
result(status="done", output="finished")
"""

if __name__ == "__main__":
    address, namespace, root, marks = sys.argv[1:5]
    executor = RayExecutor(address, namespace, grace_s=0.5)
    agents = RayAgents(Path(root), address, namespace)
    code = f"MARKS = {marks!r}\n" + RESTART_AGENT
    req = agents.request(code, mounts=[Mount(Path(marks), True)], env={"KEY": "restart-secret-1"})
    executor.launch(req)
    print(req.run_id, flush=True)
    while True:
        time.sleep(1)
