"""train.device: resolution and its errors, device-free state. Runs without a GPU."""
from __future__ import annotations

import io

import pytest
import torch
from gymnasium import spaces

from rlpipe.agents.algorithms import PPO
from rlpipe.agents.device import resolve_device, to_cpu
from rlpipe.agents.policy import build_agent
from rlpipe.config import AgentConfig, ConfigError, Params, TrainConfig


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_and_cpu_resolve_to_cpu_without_a_gpu(no_gpu):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("setting", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_a_params_error_naming_the_key(no_gpu, setting):
    with pytest.raises(ConfigError) as e:
        resolve_device(setting)
    assert str(e.value).startswith("train.device:") and setting in str(e.value)


def test_cuda_index_beyond_the_machine_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"train.device: 'cuda:2' does not exist.*2 CUDA"):
        resolve_device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda:1")


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "CPU", 1])
def test_bad_device_settings_are_refused_by_the_params(value):
    with pytest.raises(ConfigError, match="train.device"):
        Params.from_dict({"train": {"device": value}})


@pytest.mark.parametrize("value, ok", [(True, True), (False, True), ("auto", True),
                                       ("yes", False), (1, False)])
def test_normalize_observations_setting(value, ok):
    if ok:
        assert Params.from_dict({"train": {"normalize_observations": value}}) \
            .train.normalize_observations == value
    else:
        with pytest.raises(ConfigError, match="train.normalize_observations"):
            Params.from_dict({"train": {"normalize_observations": value}})


def test_device_is_not_part_of_the_fingerprint():
    from rlpipe.config import fingerprint

    assert fingerprint(Params.from_dict({"train": {"device": "cpu"}})) == \
        fingerprint(Params.from_dict({"train": {"device": "auto"}}))
    assert fingerprint(Params.from_dict({"train": {"normalize_observations": True}})) != \
        fingerprint(Params.from_dict({"train": {"normalize_observations": False}}))


def test_to_cpu_keeps_structure_and_values():
    nested = {"a": torch.ones(2), "b": [torch.zeros(1), (3, "x")], "c": None}
    out = to_cpu(nested)
    assert torch.equal(out["a"], nested["a"]) and out["b"][1] == (3, "x") and out["c"] is None


def test_agent_and_optimizer_state_save_as_cpu_tensors_and_reload():
    agent = build_agent(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), AgentConfig(mlp_hidden=(8,)),
                        device="cpu")
    assert agent.device == torch.device("cpu")
    learner = PPO(agent, TrainConfig())
    state = to_cpu({"actor": agent.actor.state_dict(), **learner.state_dict()})
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, map_location="cpu", weights_only=True)
    other = build_agent(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), AgentConfig(mlp_hidden=(8,)))
    other.actor.load_state_dict(loaded["actor"])
    assert all(torch.equal(a, b) for a, b in zip(agent.actor.parameters(), other.actor.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_agent_on_cuda_samples_and_updates():
    agent = build_agent(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), AgentConfig(mlp_hidden=(8,)),
                        device="cuda")
    batch = agent.collate(agent.preprocess([torch.rand(3).numpy() for _ in range(4)]))
    assert batch.device.type == "cuda"
    dist = agent.distribution(batch).to("cpu")
    assert dist.sample().device.type == "cpu"


@pytest.mark.parametrize("setting, obs, act, on", [
    ("auto", "flat", "box", True), ("auto", "flat", "discrete", False),
    ("auto", "flat", "multi_discrete", False), ("auto", "graph", "discrete", False),
    (True, "graph", "discrete", True), (False, "flat", "box", False)])
def test_normalize_observations_auto_is_on_for_continuous_control_only(setting, obs, act, on):
    from rlpipe.agents.normalize import resolve_normalization

    assert resolve_normalization(setting, obs, act) is on
