"""Checks that the running venv holds exactly the pinned set of a pip-compile lock file.

Usage: python .ci/lockcheck.py requirements.lock — exits 1 listing every package that is
missing, extra or at another version (our own editable package is ignored).
"""

import re
import sys
from importlib import metadata
from pathlib import Path

OWN = "mission-control"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def norm(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line)
        if m:
            pins[norm(m.group(1))] = m.group(2)
    return pins


def installed() -> dict[str, str]:
    found = {norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    found.pop(OWN, None)
    return found


def main() -> int:
    want, have = locked(Path(sys.argv[1])), installed()
    problems = [f"missing: {n}=={v}" for n, v in want.items() if n not in have]
    problems += [f"not in the lock: {n}=={v}" for n, v in have.items() if n not in want]
    problems += [
        f"{n}: installed {have[n]}, locked {v}" for n, v in want.items() if have.get(n, v) != v
    ]
    for p in sorted(problems):
        print(f"lockcheck: {p}", file=sys.stderr)
    if problems:
        print(
            "lockcheck: the venv differs from the lock; `make clean test` rebuilds it",
            file=sys.stderr,
        )
        return 1
    print(f"lockcheck: the venv holds exactly the {len(want)} locked packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
