"""Ray as an optional dependency: the one place mc imports `ray`, and how it joins a cluster.

Only the Ray executor's modules (ray_executor.py, the `mc doctor` probe) come here; nothing
else in mc imports ray (import-linter checks it), so the default install and `make demo` run
without it. `import_ray` turns a missing install into `RayUnavailable`, naming the fix.

Loopback: Ray replaces 127.0.0.1 / localhost by the machine's outward address wherever it is
given (`ray start --node-ip-address`, the bootstrap address, the driver's `_node_ip_address`;
ray._private.services.resolve_ip_for_localhost, checked with Ray 2.60), so a cluster meant to
stay on loopback would bind and dial the machine's other interface. `keep_loopback` makes that
one function leave loopback alone; mc applies it only when the configured address is loopback.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import ModuleType
from typing import Any

from specs.errors import MCError

INSTALL_HINT = "Ray is not installed: pip install '.[ray]' (in mc's venv), or use executor: local"
LOOPBACK = "127.0.0.1"
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
_connect_lock = threading.Lock()
_joined: list[str] = []  # the address this process joined (Ray allows one cluster per process)


class RayUnavailable(MCError):
    """Ray is not installed, or the cluster cannot be reached; the message says which and how."""


def import_ray() -> ModuleType:
    """The `ray` module. Raises RayUnavailable (with the install hint) when it is missing."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None
    return ray


def ray_version() -> str | None:
    """The installed Ray's version without importing it (cheap, for `mc doctor`); None if absent."""
    import importlib.metadata

    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        return None


def is_loopback(address: str) -> bool:
    """Whether a Ray address ("HOST:PORT", "ray://HOST:PORT") names this machine's loopback."""
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in _LOOPBACK_NAMES or host.startswith("127.")


def keep_loopback() -> None:
    """Make Ray keep 127.0.0.1 as given instead of swapping in the outward address (module doc).
    Idempotent; touches nothing but that one resolver."""
    import ray._private.services as services

    current = getattr(services, "resolve_ip_for_localhost", None)
    if current is None or getattr(current, "_mc_keeps_loopback", False):
        return  # another Ray version: nothing of this name to correct

    def resolve(host: str) -> str:
        return LOOPBACK if host in _LOOPBACK_NAMES else str(current(host))

    resolve._mc_keeps_loopback = True  # type: ignore[attr-defined]
    services.resolve_ip_for_localhost = resolve


def connect(address: str, namespace: str) -> ModuleType:
    """Join the cluster at `address` ("auto", "HOST:PORT" of the head's GCS, or
    "ray://HOST:PORT" for Ray Client) as a driver in `namespace`; reuses a connection this
    process already has. Ray's token (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN or its token file)
    comes from mc's environment. Raises RayUnavailable when Ray is missing or the cluster
    cannot be reached."""
    ray = import_ray()
    with _connect_lock:
        if ray.is_initialized():
            if _joined and _joined[0] != address:
                raise RayUnavailable(
                    f"mc joins one Ray cluster per process; already joined {_joined[0]}, "
                    f"so {address} cannot be used too"
                )
            return ray
        kwargs: dict[str, Any] = {
            "address": address,
            "namespace": namespace,
            "log_to_driver": False,  # agent output is the run's own logs, never mc's
            "logging_level": logging.WARNING,
            "configure_logging": False,
        }
        if is_loopback(address):
            keep_loopback()
            if not address.startswith("ray://"):
                kwargs["_node_ip_address"] = LOOPBACK
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                ray.shutdown()
            raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc}") from None
        _joined[:] = [address]
    return ray
