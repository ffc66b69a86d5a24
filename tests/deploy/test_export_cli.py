"""`rlpipe export` on a real checkpoint (the session's tiny reference run): the files, their
metadata, loading them with rlpipe.inference, and one clear line for every bad input."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlpipe.checkpoints import load_checkpoint
from rlpipe.cli import main
from rlpipe.config import Params, params_digest
from rlpipe.envs import register
from tests.helpers import REPO, tiny

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from rlpipe.inference import PolicyLoadError, load_policy


@pytest.fixture(scope="module")
def exported(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "policy" / "policy.onnx"
    assert main(["export", "--checkpoint", str(reference / "checkpoints" / "best.pt"),
                 "--output", str(out)]) == 0
    return out


def test_export_writes_the_model_and_its_metadata(exported, reference):
    meta = json.loads((exported.parent / "metadata.json").read_text())
    state = load_checkpoint(reference / "checkpoints" / "best.pt")
    assert meta["model"] == "policy.onnx" and meta["opset"] == 17
    assert meta["params_digest"] == params_digest(Params.from_dict(json.loads(state["params"])))
    assert meta["fingerprint"] == state["fingerprint"]
    assert meta["checkpoint"]["episode"] == state["episode"]
    assert meta["policy"]["kind"] == "graph" and meta["policy"]["normalization_in_graph"] is False
    assert meta["observation_space"]["type"] == "Graph" and meta["action_space"]["type"] == "Discrete"
    parity = meta["parity"]
    assert parity["states"] == 64 and parity["greedy_actions_differing"] == 0
    assert parity["max_scaled_difference"] <= 1e-5


def test_exported_policy_places_on_a_larger_graph_as_torch_does(exported, reference):
    """Trained on 8-node graphs, run on 40: dynamic node and edge counts; greedy actions and
    logits equal to the checkpoint's torch agent (rlpipe evaluate's path)."""
    from rlpipe.agents.policy import build_agent
    from rlpipe.deploy.parity import collect_observations, torch_policy

    register()
    env = gym.make("rlpipe/GraphDeploy-v0", num_nodes=40, num_cloud=2)
    observations = collect_observations(env, 30, seed=3)
    state = load_checkpoint(reference / "checkpoints" / "best.pt")
    agent = build_agent(env.observation_space, env.action_space, tiny().agent)
    agent.actor.load_state_dict(state["actor"])
    want, want_modes = torch_policy(agent, observations)
    policy = load_policy(exported.parent)
    got = policy.distributions(observations)
    for w, g in zip(want, got):
        assert g["logits"].shape == (40,)
        np.testing.assert_allclose(g["logits"], w["logits"], rtol=0, atol=1e-5)
    assert [policy.act(o) for o in observations] == [int(a) for a in want_modes]
    masked = np.zeros(40, dtype=bool)
    masked[7] = True
    assert policy.act(observations[0], action_mask=masked) == 7


def test_inference_imports_and_runs_without_torch(exported):
    code = ("import sys\n"
            "import rlpipe.inference as inf\n"
            "assert 'torch' not in sys.modules, 'import'\n"
            "from gymnasium.spaces import GraphInstance\n"
            "import numpy as np\n"
            f"p = inf.load_policy({str(exported)!r})\n"
            "links = np.array([[i, (i + 1) % 12] for i in range(12)])\n"
            "g = GraphInstance(np.random.default_rng(0).random((12, p._obs.dim), dtype=np.float32),"
            " np.ones((12, 1), np.float32), links)\n"
            "a = p.act(g)\n"
            "assert 0 <= a < 12 and 'torch' not in sys.modules, 'run'\n")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


def test_a_changed_model_or_missing_metadata_is_refused(exported, tmp_path):
    copy = tmp_path / "policy.onnx"
    copy.write_bytes(exported.read_bytes())
    with pytest.raises(PolicyLoadError, match="metadata.json: not found"):
        load_policy(copy)
    meta = json.loads((exported.parent / "metadata.json").read_text())
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    copy.write_bytes(exported.read_bytes()[:-1] + b"\0")
    with pytest.raises(PolicyLoadError, match="sha256"):
        load_policy(copy)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "missing.pt", "--output", "p/policy.onnx"], "missing.pt: file not found"),
    (["--checkpoint", "CKPT", "--output", "p/policy.onnx", "--format", "tflite"], "--format 'tflite'"),
    (["--checkpoint", "CKPT", "--output", "p/policy.txt"], "must end in .onnx"),
])
def test_bad_inputs_fail_in_one_line(args, message, reference, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [str(reference / "checkpoints" / "best.pt") if a == "CKPT" else a for a in args]
    assert main(["export", *args]) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "p").exists()


def test_a_network_without_dense_kernels_is_refused_in_one_line(reference, tmp_path, capsys):
    """agent.conv transformer: no dense kernel to trace; exit 2, one line, nothing written."""
    from rlpipe.agents.policy import build_agent

    state = load_checkpoint(reference / "checkpoints" / "best.pt")
    params = json.loads(state["params"])
    params["agent"]["conv"] = "transformer"
    register()
    env = gym.make("rlpipe/GraphDeploy-v0", **params["env"]["kwargs"])
    agent = build_agent(env.observation_space, env.action_space, tiny(agent={"conv": "transformer"}).agent)
    state.update(params=json.dumps(params), actor=agent.actor.state_dict(), critic=agent.critic.state_dict())
    torch.save(state, tmp_path / "transformer.pt")
    out = tmp_path / "out" / "policy.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "transformer.pt"), "--output", str(out)]) == 2
    err = _error_line(capsys)
    assert "cannot be exported" in err and "TransformerConv" in err, err
    assert not out.parent.exists()


def test_export_without_the_onnx_package_fails_in_one_line(reference, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    out = tmp_path / "policy.onnx"
    assert main(["export", "--checkpoint", str(reference / "checkpoints" / "best.pt"), "--output", str(out)]) == 2
    assert "pip install -e '.[export]'" in _error_line(capsys)
    assert not out.exists()


def test_the_readme_example_runs_on_onnxruntime_alone(exported):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    example = next(b for b in blocks if "load_policy(" in b)
    assert len(example.strip().splitlines()) <= 13, example
    assert '"deploy/policy/policy.onnx"' in example
    code = example.replace('"deploy/policy/policy.onnx"', repr(str(exported)))
    code += "import sys\nassert 'torch' not in sys.modules\n"
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "Acceptance Rate" in proc.stdout, proc.stdout


def test_graph_inputs_edge_cases_and_refusals(exported):
    from gymnasium.spaces import GraphInstance

    policy = load_policy(exported)
    f = policy.observation_space.node_space.shape[0]
    no_edges = GraphInstance(np.ones((3, f), np.float32), np.zeros((0, 1), np.float32),
                             np.zeros((0, 2), np.int64))
    logits = policy.distribution(no_edges)["logits"]
    assert logits.shape == (3,) and np.all(logits == logits[0])  # nothing tells the nodes apart
    self_loop = GraphInstance(np.ones((1, f), np.float32), np.ones((1, 1), np.float32), np.array([[0, 0]]))
    assert policy.act(self_loop) == 0
    bad = {"repeated edge": (np.ones((3, f)), np.array([[0, 1], [0, 1]])),
           "outside its 3 nodes": (np.ones((3, f)), np.array([[0, 1], [1, 5]])),
           f"[N >= 1, {f}]": (np.ones((3, f + 1)), np.array([[0, 1], [1, 2]]))}
    for message, (nodes, links) in bad.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            policy.act(GraphInstance(nodes.astype(np.float32), np.ones((2, 1), np.float32), links))
