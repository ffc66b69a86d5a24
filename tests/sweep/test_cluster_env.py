"""What travels to the Ray workers with every sweep: rlpipe itself and the user's env modules."""
from __future__ import annotations

import sys
from pathlib import Path

import rlpipe
from rlpipe.sweep.cluster import local_cpus, runtime_env, split_address, user_module_paths


def test_rlpipe_and_the_users_own_environment_modules_are_shipped(tmp_path, monkeypatch):
    (tmp_path / "my_env.py").write_text("X = 1\n")
    (tmp_path / "my_pkg").mkdir()
    (tmp_path / "my_pkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    env = runtime_env(["my_env:MyEnv-v0", "my_pkg.envs:Other-v0", "CartPole-v1",
                       "gymnasium.envs.classic_control:CartPole-v1", "missing_mod:X-v0"])
    assert env["py_modules"] == [str(Path(rlpipe.__file__).parent),
                                 str(tmp_path / "my_env.py"), str(tmp_path / "my_pkg")]
    assert "__pycache__" in env["excludes"]
    assert user_module_paths(["CartPole-v1", "rlpipe/GraphDeploy-v0"]) == []
    assert "my_env" not in sys.modules  # found, not imported


def test_local_cpus_and_addresses():
    import os

    have = os.cpu_count() or 1
    assert local_cpus(0, 1.0) == have
    assert local_cpus(1, 1.0) == 1
    assert local_cpus(1000, 1.0) == have
    assert local_cpus(3, 0.5) == min(have, 2)
    assert split_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert split_address("[::1]:6379") == ("::1", 6379)
