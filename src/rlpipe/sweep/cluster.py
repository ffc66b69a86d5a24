"""Start an embedded Ray, or join a cluster, with a bounded wait and one-line errors.

``sweep.address: local`` starts Ray inside this process tree with an explicit CPU count, no
dashboard, no usage reporting, and loopback addresses only (Ray otherwise advertises the
machine's outward address even for a one-machine instance). Any other address joins a running
cluster (``ray start --head`` there): a TCP probe first (a refused or silent port fails in
seconds), then ``ray.init`` under a watchdog, because Ray retries an unanswered handshake far
longer than a person waits. What Ray prints while connecting is held back and replaced by one
line when it fails.

Every trial runs the driver's own copy of rlpipe: the package folder travels to the nodes as a
Ray ``py_modules`` runtime environment, so the training code (part of each run's fingerprint)
is the same everywhere. Everything else (torch, gymnasium, ...) must be installed on each node.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rlpipe.errors import RlpipeError

PROBE_TIMEOUT_S = 5.0      # the TCP probe of a cluster address
CONNECT_TIMEOUT_S = 20.0   # ray.init's handshake, after the probe (both under 30 s together)


class ClusterError(RlpipeError):
    """Ray could not be started or joined; the message names the address."""


@dataclass(frozen=True)
class Cluster:
    """What the sweep joined: for the log and for scheduling."""

    address: str                 # 'local' or the address joined
    nodes: int
    cpus: float                  # all CPUs of the alive nodes
    max_node_cpus: float         # the most CPUs any one node has (a trial must fit on one)
    driver_node_id: str

    def describe(self) -> str:
        cpus = f"{self.cpus:g} CPU" + ("" if self.cpus == 1 else "s")
        if self.address == "local":
            return f"started a local Ray instance ({cpus})"
        return f"joined the Ray cluster at {self.address} ({self.nodes} nodes, {cpus})"


def user_module_paths(env_ids: Iterable[str]) -> list[str]:
    """Where the modules of ``module:Env-v0`` ids live, when they are the user's own files (not
    installed packages, which every node must install): a package folder or a ``.py`` file."""
    paths = []
    for env_id in env_ids:
        name = env_id.partition(":")[0].split(".")[0] if ":" in env_id else ""
        try:
            spec = importlib.util.find_spec(name) if name else None
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
            continue
        path = Path(spec.origin)
        if spec.submodule_search_locations:
            path = path.parent
        if not any(part in ("site-packages", "dist-packages") for part in path.parts):
            paths.append(str(path))
    return sorted(set(paths))


def runtime_env(env_ids: Iterable[str] = ()) -> dict:
    """Ship this rlpipe package (and the user's own environment modules) to every worker: the
    same code on every node."""
    import rlpipe

    return {"py_modules": [str(Path(rlpipe.__file__).parent), *user_module_paths(env_ids)],
            "excludes": ["__pycache__", "*.pyc"]}


def local_cpus(max_concurrent: int, cpus_per_trial: float) -> int:
    """CPUs of an embedded Ray: what the trials in flight need, at most this machine's."""
    have = os.cpu_count() or 1
    if max_concurrent <= 0:
        return have
    return max(1, min(have, math.ceil(max_concurrent * cpus_per_trial)))


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _probe(address: str) -> None:
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except socket.timeout:
        raise ClusterError(f"sweep.address: no Ray cluster answered at {address} "
                           f"within {PROBE_TIMEOUT_S:g} s") from None
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ClusterError(f"sweep.address: no Ray cluster reachable at {address} "
                           f"({reason.lower()})") from None


def _reason(exc: BaseException, held: str) -> str:
    """The most telling line of a failed ray.init."""
    for text in (str(exc), held):
        for line in text.splitlines():
            if "Authentication" in line or "InvalidAuthToken" in line:
                return ("authentication token missing or wrong (copy the head node's "
                        "~/.ray/auth_token, or set RAY_AUTH_TOKEN)")
            if "version" in line.lower() and "mismatch" in line.lower():
                return line.strip()
    first = str(exc).strip().splitlines()
    return first[0] if first else type(exc).__name__


def _hang(fd: int, message: str) -> None:
    os.write(fd, message.encode())
    os._exit(2)  # ray.init is blocked in C++ and cannot be interrupted; nothing is written yet


def connect(address: str, max_concurrent: int, cpus_per_trial: float,
            env_ids: Iterable[str] = (), stage: str = "sweep") -> Cluster:
    """Start (``local``) or join Ray; raise :class:`ClusterError` with one line on failure.

    A join that gets no answer within the time limit ends the process (exit status 2) with one
    line, since ``ray.init`` cannot be interrupted while it waits.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == "local":
        # loopback only: with this, Ray uses 127.0.0.1 as the node address (as on macOS)
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    if address == "local":
        ray._private.ray_constants.ENABLE_RAY_CLUSTER = False  # when ray was imported before
    elif address != "auto":
        _probe(address)
    kwargs = dict(runtime_env=runtime_env(env_ids), log_to_driver=False, logging_level=logging.WARNING)
    # hold back what Ray prints (Python and C++ alike write to descriptor 2) while connecting
    sys.stderr.flush()
    saved = os.dup(2)
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    timer = threading.Timer(CONNECT_TIMEOUT_S, _hang, args=(saved, (
        f"{stage}: error: sweep.address: no Ray cluster answered at {address} within "
        f"{CONNECT_TIMEOUT_S:g} s (is `ray start --head` running there, "
        "and is this its port?)\n")))
    timer.daemon = True
    error: Exception | None = None
    try:
        if address == "local":
            ray.init(address="local", num_cpus=local_cpus(max_concurrent, cpus_per_trial),
                     include_dashboard=False, **kwargs)
        else:
            timer.start()
            ray.init(address=address, **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure of ray.init becomes one line
        error = e
    finally:
        timer.cancel()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        held.seek(0)
        text = held.read().decode(errors="replace")
        held.close()
    if error is not None:
        with contextlib.suppress(Exception):
            ray.shutdown()
        what = ("cannot start a local Ray instance" if address == "local"
                else f"cannot join the Ray cluster at {address}")
        raise ClusterError(f"sweep.address: {what}: {_reason(error, text)}")
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in nodes]
    return Cluster(address, len(nodes), sum(cpus), max(cpus, default=0.0),
                   ray.get_runtime_context().get_node_id())


def disconnect() -> None:
    """Leave Ray (an embedded instance stops; a cluster ends this job's tasks and actors)."""
    import ray

    with contextlib.suppress(Exception):
        ray.shutdown()
