"""A real two-node Ray cluster on loopback addresses, for tests: a head and a worker node, each
started by `ray start --block` as a separate process; every process is tracked by pid and ended.

Ray rewrites 127.0.0.1 (and "localhost") to the machine's outward address; other loopback
addresses are left alone, so the head is 127.0.0.2 and the worker 127.0.0.3: all traffic stays
on the loopback interface. Each `ray start --block` stays in the foreground as the parent of its
node's processes (GCS, raylet, agents, workers); stopping a node kills that whole process tree.
Token authentication is on, with a token file of the test's own.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(*roots: int) -> set[int]:
    """The pids of ``roots`` and all their descendants now."""
    kids = children()
    out, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in out:
            out.add(pid)
            stack.extend(kids.get(pid, []))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_pids(pids: set[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_tree(known: set[int]) -> set[int]:
    """SIGKILL ``known`` and all their descendants: first freeze (SIGSTOP) the tree until it
    stops growing, so no child escapes to init between listing and killing; returns the pids."""
    frozen: set[int] = set()
    for _ in range(20):
        found = process_tree(*known, *frozen) - frozen
        if not found:
            break
        kill_pids(found, signal.SIGSTOP)
        frozen |= found
    kill_pids(frozen, signal.SIGKILL)
    return frozen


class RayNode:
    """One `ray start --block` process and the pids of everything it started."""

    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name = name
        self.log = log
        self.proc = subprocess.Popen([RAY, "start", "--block", *args], env=env,
                                     stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.pids: set[int] = {self.proc.pid}

    def track(self) -> None:
        self.pids |= process_tree(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the node's whole process tree (a crashed machine)."""
        self.pids |= kill_tree(self.pids)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM `ray start` (it stops its node), then SIGKILL whatever is left."""
        self.track()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.pids |= kill_tree({p for p in self.pids if alive(p)})
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


class TwoNodeCluster:
    def __init__(self, cpus_per_node: int = 1):
        self.tmp = Path(tempfile.mkdtemp(prefix="rlray", dir="/tmp"))  # short: unix socket paths
        (self.tmp / "token").write_text(secrets.token_hex(32))
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_AUTH_TOKEN_PATH": str(self.tmp / "token")}
        self.env.pop("RAY_ADDRESS", None)
        self.port = free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        self.cpus = cpus_per_node
        self.nodes: list[RayNode] = []
        self.head: RayNode | None = None
        self.worker: RayNode | None = None

    def _common(self) -> list[str]:
        return [f"--num-cpus={self.cpus}", f"--temp-dir={self.tmp}", "--disable-usage-stats",
                "--object-store-memory=100000000", f"--metrics-export-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                f"--dashboard-agent-grpc-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}"]

    def start(self, timeout: float = 120) -> "TwoNodeCluster":
        self.head = RayNode("head", [
            "--head", f"--node-ip-address={HEAD_IP}", f"--port={self.port}",
            "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
            f"--dashboard-port={free_port()}", *self._common()], self.env, self.tmp / "head.log")
        self.nodes.append(self.head)
        self._wait_port(timeout)
        self.worker = self.start_worker()
        self.wait_nodes(2, timeout)
        return self

    def start_worker(self) -> RayNode:
        node = RayNode("worker", [f"--address={self.address}", f"--node-ip-address={WORKER_IP}",
                                  *self._common()], self.env, self.tmp / "worker.log")
        self.nodes.append(node)
        return node

    def _wait_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.head.proc.poll() is not None:
                raise RuntimeError(f"ray head exited:\n{self.head.log.read_text()}")
            try:
                socket.create_connection((HEAD_IP, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"ray head did not listen within {timeout} s")

    def wait_started(self, node: RayNode, timeout: float) -> None:
        """Until `ray start` says the node runs (it prints this once the node registered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"ray {node.name} exited:\n{node.log.read_text()}")
            if "Ray runtime started" in node.log.read_text(errors="replace"):
                node.track()
                return
            time.sleep(0.2)
        raise RuntimeError(f"ray {node.name} did not start within {timeout} s:\n"
                           f"{node.log.read_text()}")

    def wait_nodes(self, n: int, timeout: float) -> None:
        for node in self.nodes[:n]:
            self.wait_started(node, timeout)

    def stop(self) -> None:
        """End every process this cluster started (workers first, then the head)."""
        for node in reversed(self.nodes):
            try:
                node.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                kill_pids(node.pids)
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)
