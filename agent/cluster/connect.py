"""Joining a Ray cluster for `--ray` runs: the `cluster` extra's import, and one clear error.

RAY_ADDRESS (Ray's own variable) names a running cluster (`host:port`, `ray://host:port` or
`auto`); without it a new local Ray starts on this machine. An address is checked with a short
TCP connect first, because `ray.init` waits minutes on an address where nothing listens.
"""

import os
import socket
from typing import Any

from agent.errors import ConfigError

INSTALL_HINT = "pip install 'behavior-agent[cluster]'"
_CONNECT_TIMEOUT_S = 5.0
_DEFAULT_PORT = 6379  # Ray's GCS port when an address names only a host


def import_ray() -> Any:
    """The `ray` module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--ray needs Ray: install it with `{INSTALL_HINT}` (ray>=2.30)."
        ) from None
    return ray


def connect_ray() -> Any:
    """The `ray` module, joined to the cluster named by RAY_ADDRESS (else a local Ray)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if address and address not in ("auto", "local"):
        check_reachable(address)
    # Without RAY_ADDRESS, a new local Ray: a bare `ray.init()` would first try the last
    # cluster started on this machine (/tmp/ray/ray_current_cluster), even a dead one.
    where = {} if address else {"address": "local"}
    # Token authentication is recent; older Ray releases have no such error.
    refused = getattr(ray.exceptions, "AuthenticationError", ())
    try:
        ray.init(include_dashboard=False, log_to_driver=False, **where)
    except (refused, ConnectionError, TimeoutError, RuntimeError, ray.exceptions.RayError) as error:
        if not address:
            raise ConfigError(
                f"Could not start a local Ray on this machine ({_first_line(error)}); check "
                "free memory and space in /tmp, or set RAY_ADDRESS to a running cluster."
            ) from None
        if address in ("auto", "local"):
            raise unreachable(address, error) from None
        # Something listens there (checked above): most often a token this machine lacks.
        raise ConfigError(
            f"Could not join the Ray cluster at {address} ({_first_line(error)}). If the "
            "cluster uses token authentication (recent Ray turns it on by default), copy "
            "~/.ray/auth_token from the head node to this machine (or set RAY_AUTH_TOKEN) and "
            "set RAY_AUTH_MODE=token; "
            "check that RAY_ADDRESS is the address `ray start --head` printed."
        ) from None
    return ray


def check_reachable(address: str) -> None:
    """Raises the unreachable-cluster error unless something listens at `address`."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise unreachable(address, error) from None


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of `host:port`, `ray://host:port` or a bare host (port 6379)."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, _, port = bare.rpartition(":")
    if not host:
        return bare, _DEFAULT_PORT
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ConfigError(
            f"RAY_ADDRESS={address!r} is not an address; give host:port of the head node "
            "(the one `ray start --head` printed), e.g. RAY_ADDRESS=10.0.0.5:6379."
        ) from None


def unreachable(address: str, error: Exception) -> ConfigError:
    """The one error for a cluster that cannot be joined, with the ways to fix it."""
    return ConfigError(
        f"Cannot reach the Ray cluster at {address} ({_first_line(error)}). Start it on the "
        "head node with `ray start --head --port=6379` and set RAY_ADDRESS=<head-ip>:6379 (or "
        "`ray start --address=<head-ip>:6379` on the other nodes), or unset RAY_ADDRESS to run "
        "on a local Ray on this machine."
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
