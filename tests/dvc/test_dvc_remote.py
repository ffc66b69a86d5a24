"""Versioned checkpoints in remote storage: `dvc push` / `dvc pull` with the project's default
(repository-local) remote and with an S3 remote (moto's S3 server on 127.0.0.1)."""
from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_repo, dvc, edit_params, git, tree_hashes

pytestmark = pytest.mark.dvc

OUTPUTS = ("checkpoints", "training_output", "data/summary", "plots")
BUCKET = "rlpipe-test"


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def up_to_date(repo: Path) -> bool:
    return "Data and pipelines are up to date." in dvc(repo, "status").stdout


def drop_cache_and_outputs(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    for name in OUTPUTS:
        shutil.rmtree(repo / name, ignore_errors=True)


def cache_files(repo: Path) -> dict[str, str]:
    """The content-addressed objects `dvc push` sends (not the run-cache in .dvc/cache/runs)."""
    return {f"files/{k}": v for k, v in tree_hashes(repo / ".dvc" / "cache" / "files").items()}


# --- the default remote: .dvc-storage/ inside the repository, ignored by git ---------------------

@pytest.fixture(scope="module")
def two_versions(dvc_trained_repo: Path, tmp_path_factory):
    """A repository with two committed runs, each pushed right after its commit.

    Run 1 = the session's trained repository; run 2 = train.episodes raised, `dvc repro`
    (resumes from run 1's checkpoints, so checkpoints/ gains files and best.pt may change).
    Returns (repo, {commit: checkpoint hashes}, push outputs).
    """
    repo = copy_repo(dvc_trained_repo, tmp_path_factory.mktemp("remote") / "repo")
    versions, pushes = {}, []
    versions[head(repo)] = tree_hashes(repo / "checkpoints")
    pushes.append(dvc(repo, "push").stdout)
    episodes = yaml.safe_load((repo / "params.yaml").read_text())["train"]["episodes"]
    edit_params(repo, {"train": {"episodes": episodes + 4}})
    dvc(repo, "repro", timeout=600)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "run 2: more episodes")
    versions[head(repo)] = tree_hashes(repo / "checkpoints")
    pushes.append(dvc(repo, "push").stdout)
    return repo, versions, pushes


def test_default_remote_is_local_and_git_ignored(two_versions):
    repo, versions, pushes = two_versions
    remotes = dvc(repo, "remote", "list").stdout
    assert "(default)" in remotes and str(repo / ".dvc-storage") in remotes, remotes
    assert (repo / ".dvc-storage" / "files" / "md5").is_dir()
    assert git(repo, "status", "--porcelain", "--ignored", ".dvc-storage").stdout.startswith("!! ")
    assert all("pushed" in p for p in pushes), pushes
    assert len(versions) == 2
    a, b = versions.values()
    assert a != b and set(a) < set(b)  # run 2 kept run 1's checkpoints and added newer ones


def test_pull_restores_each_version(two_versions):
    repo, versions, _ = two_versions
    try:
        for commit, ckpt_hashes in versions.items():
            git(repo, "checkout", "-q", commit)
            drop_cache_and_outputs(repo)
            out = dvc(repo, "pull")
            assert "added" in out.stdout or "fetched" in out.stdout, out.stdout
            assert tree_hashes(repo / "checkpoints") == ckpt_hashes, commit
            assert up_to_date(repo), commit
            assert dvc(repo, "status", "--cloud").stdout.strip().endswith("are in sync."), commit
    finally:
        git(repo, "checkout", "-q", "master")
        dvc(repo, "checkout", "--force", check=False)


def test_fresh_clone_pulls_from_the_shared_storage(two_versions, tmp_path):
    """A git clone has no outputs: train would start over until `dvc pull` brings them."""
    repo, versions, _ = two_versions
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    status = dvc(clone, "status").stdout
    assert "deleted:" in status and "checkpoints" in status, status
    # the default remote is relative to each clone: point this clone at the first one's storage
    dvc(clone, "remote", "modify", "--local", "storage", "url", str(repo / ".dvc-storage"))
    pulled = dvc(clone, "pull")
    assert "ERROR" not in pulled.stdout + pulled.stderr, pulled.stdout + pulled.stderr
    assert tree_hashes(clone / "checkpoints") == versions[head(clone)]
    assert up_to_date(clone)
    # the sweep pipeline (never run here) is a DVC project of its own in sweeps/: the single
    # run's commands neither pull its outputs nor read its metrics
    assert (clone / "sweeps" / "dvc.yaml").is_file() and (clone / "sweeps" / ".dvc").is_dir()
    for args in (("status",), ("metrics", "diff", "HEAD"), ("metrics", "show")):
        out = dvc(clone, *args)
        text = (out.stdout + out.stderr).lower()
        assert "error" not in text and "failed" not in text, (args, text)


# --- S3 (moto server on 127.0.0.1) ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3-compatible server in this process, restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        s3 = self.client()
        if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
            s3.create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def keys(self, prefix: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture
def s3(monkeypatch, tmp_path):
    pytest.importorskip("moto.server")
    pytest.importorskip("dvc_s3")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing",
                       "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}.items():
        monkeypatch.setenv(key, value)  # inherited by the dvc subprocesses
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request
    server = S3Server()
    server.start()
    yield server
    server.stop()


def add_s3_remote(repo: Path, server: S3Server, prefix: str) -> None:
    dvc(repo, "remote", "add", "s3remote", f"s3://{BUCKET}/{prefix}")
    dvc(repo, "remote", "modify", "s3remote", "endpointurl", server.url)


def test_s3_push_pull_roundtrip(dvc_trained_repo: Path, s3: S3Server, tmp_path):
    repo = copy_repo(dvc_trained_repo, tmp_path / "repo")
    add_s3_remote(repo, s3, "roundtrip")
    ckpt = tree_hashes(repo / "checkpoints")
    cached = cache_files(repo)
    out = dvc(repo, "push", "-r", "s3remote")
    assert f"{len(cached)} files pushed" in out.stdout, out.stdout
    keys = s3.keys("roundtrip/")
    assert len(keys) == len(cached)
    assert {k.split("/", 1)[1] for k in keys} == set(cached)  # same layout as the local cache

    drop_cache_and_outputs(repo)
    dvc(repo, "pull", "-r", "s3remote")
    assert tree_hashes(repo / "checkpoints") == ckpt
    assert cache_files(repo) == cached
    assert up_to_date(repo)


def test_s3_push_fails_cleanly_while_the_server_is_down(dvc_trained_repo: Path, s3: S3Server,
                                                        tmp_path):
    repo = copy_repo(dvc_trained_repo, tmp_path / "repo")
    add_s3_remote(repo, s3, "outage")
    outputs = {name: tree_hashes(repo / name) for name in OUTPUTS}
    cached = cache_files(repo)

    s3.stop()
    failed = dvc(repo, "push", "-r", "s3remote", check=False, timeout=240)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0, text
    assert "ERROR" in text and s3.url in text, text
    assert "Traceback" not in text, text
    assert {name: tree_hashes(repo / name) for name in OUTPUTS} == outputs
    assert cache_files(repo) == cached
    assert up_to_date(repo)

    s3.start()
    out = dvc(repo, "push", "-r", "s3remote")
    assert "pushed" in out.stdout, out.stdout
    assert len(s3.keys("outage/")) == len(cached)
    assert dvc(repo, "status", "-c", "-r", "s3remote").stdout.strip().endswith("are in sync.")
