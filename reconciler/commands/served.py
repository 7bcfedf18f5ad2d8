"""Whether `.mc/serve.json` names a live `mc serve` on loopback; MissionContext.served_by asks
before a command points the user at it or sends it the dashboard token.

serve.json is a file anyone who can write `.mc/` can forge, so it is trusted only when its
URL is plain http to a loopback address, and the pid it names is alive and holds a socket
listening on that port (its /proc/<pid>/fd socket inodes against /proc/<pid>/net/tcp{,6}).
The URL handed back is rebuilt from the checked address, never the file's own text.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_MAX_FILE = 4096
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


@dataclass(frozen=True, slots=True)
class Served:
    """A checked serve.json: the process and the loopback URL it answers on."""

    pid: int
    url: str


def trusted_serve(serve_json: Path, proc: Path = Path("/proc")) -> Served | None:
    """The serve the file names, if it passes every check; None otherwise (ignored)."""
    claimed = _read(serve_json)
    if claimed is None:
        return None
    pid, url = claimed
    target = _loopback_target(url)
    if target is None or not _alive(proc / str(pid)):
        return None
    host, port = target
    listening = _listening_on(proc / str(pid), port)
    address = next((a for a in listening if a == host or _wildcard_for(a, host)), None)
    if address is None:
        return None
    shown = f"[{host}]" if host.version == 6 else str(host)
    return Served(pid, f"http://{shown}:{port}/")


def _read(path: Path) -> tuple[int, str] | None:
    try:
        with path.open("rb") as f:
            info = json.loads(f.read(_MAX_FILE))
        pid, url = info["pid"], info["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(url, str):
        return None
    return pid, url


def _loopback_target(url: str) -> tuple[IPAddress, int] | None:
    """(loopback address, port) of an `http://host:port/` URL; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.username or parts.password or port is None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    host = parts.hostname or ""
    if host == "localhost":
        return ipaddress.IPv4Address("127.0.0.1"), port
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name could resolve anywhere
    return (address, port) if address.is_loopback else None


def _alive(pid_dir: Path) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2 :][:1]
    return state not in ("Z", "X", "")


def _listening_on(pid_dir: Path, port: int) -> list[IPAddress]:
    """Local addresses of the sockets this process holds that listen on `port`."""
    inodes = _socket_inodes(pid_dir)
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (pid_dir / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN or fields[9] not in inodes:
                continue
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port:
                found.append(_address(address))
    return found


def _socket_inodes(pid_dir: Path) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(pid_dir / "fd")
    except OSError:
        return set()  # gone, or another user's process: not ours to trust
    for fd in fds:
        try:
            target = os.readlink(pid_dir / "fd" / fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> IPAddress:
    """/proc/net/tcp's address: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "big":
        swapped = raw
    else:
        swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(swapped) == 4:
        return ipaddress.IPv4Address(swapped)
    v6 = ipaddress.IPv6Address(swapped)
    return v6.ipv4_mapped or v6


def _wildcard_for(listening: IPAddress, host: IPAddress) -> bool:
    """A socket bound to 0.0.0.0 (or ::) answers on loopback too."""
    if not listening.is_unspecified:
        return False
    return listening.version == host.version or listening.version == 6
