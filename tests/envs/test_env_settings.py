"""The public helper for environments' typed settings: the example of docs/ENVIRONMENTS.md runs
and every error is one line naming env.kwargs.<key>; the built-in environments use it."""
from __future__ import annotations

import re
import sys
import types

import pytest

from rlpipe.config import ConfigError, EnvConfig
from rlpipe.train.environment import env_settings
from tests.helpers import REPO

DOC = (REPO / "docs" / "ENVIRONMENTS.md").read_text()


def _doc_example(monkeypatch) -> types.ModuleType:
    section = DOC.split("## Typed settings", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    module = types.ModuleType("doc_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look the module up
    exec(compile(code, "ENVIRONMENTS.md", "exec"), module.__dict__)  # noqa: S102 - the docs' code
    return module


def test_the_documented_example_builds_checks_and_fills_defaults(monkeypatch):
    env_class = _doc_example(monkeypatch).TreasureGraph
    assert env_class(nodes=30).settings == {"nodes": 30, "placement": "uniform",
                                            "cost_min": 0.1, "cost_max": 0.4}
    for kwargs, line in [
        ({"cost_min": 0.5, "cost_max": 0.2},
         "env.kwargs.cost_min: must be <= env.kwargs.cost_max (0.2), got 0.5"),
        ({"nodes": 1}, "env.kwargs.nodes: must be between 2 and 500, got 1"),
        ({"placement": "near"}, "env.kwargs.placement: must be one of 'uniform', 'far', got 'near'"),
        ({"nodes": "many"}, "env.kwargs.nodes: expected an integer, got 'many'"),
        ({"colour": 1}, "env.kwargs.colour: unknown key (allowed keys: cost_max, cost_min, nodes, "
                        "placement)"),
    ]:
        with pytest.raises(ConfigError) as err:
            env_class(**kwargs)
        assert str(err.value) == line


@pytest.mark.parametrize("env_id, package, lo, hi", [
    ("rlpipe/GraphDeploy-v0", "graph_deploy", "lifetime_min", "lifetime_max"),
    ("rlpipe/ServiceChain-v0", "service_chain", "capacity_min", "capacity_max"),
])
def test_built_in_environments_declare_their_settings_with_it(env_id, package, lo, hi):
    source = (REPO / "src" / "rlpipe" / "envs" / package / "config.py").read_text()
    assert "from rlpipe.envs.settings import" in source and "rlpipe.config" not in source
    with pytest.raises(ConfigError, match=rf"^env\.kwargs\.{lo}: must be <= env\.kwargs\.{hi} "):
        env_settings(EnvConfig(id=env_id, kwargs={lo: 5, hi: 4}))
