"""The README's examples match the project: every params edit it shows (`sed` on params.yaml,
`dvc exp run -S`) changes a real value of params.yaml, its sample run is the default run, and
every output folder it tells people to create is git-ignored."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import REPO

README = (REPO / "README.md").read_text()
PARAMS_TEXT = (REPO / "params.yaml").read_text()
PARAMS = yaml.safe_load(PARAMS_TEXT)

# sed -i 's/OLD/NEW/' params.yaml, optionally within a range: '/FROM/,/TO/s/OLD/NEW/'
SED = re.compile(r"sed -i '?(?:/([^/]*)/,/([^/]*)/)?s/((?:[^/\\]|\\.)*)/((?:[^/\\]|\\.)*)/'? "
                 r"params\.yaml")
# dvc exp run ... -S section.key=value (one or more)
SET = re.compile(r"-S\s+([A-Za-z_][\w.]*)=(\S+)")


def code_lines() -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    return [line for b in blocks for line in b.splitlines()]


def sed_edits() -> list[tuple[str | None, str | None, str, str]]:
    return [m.groups() for line in code_lines() for m in SED.finditer(line)]


def sed(text: str, start: str | None, end: str | None, old: str, new: str) -> tuple[str, int]:
    """What `sed -i '[/start/,/end/]s/old/new/'` does to ``text``, and how many lines it changes."""
    lines, inside, hits = text.split("\n"), False, 0
    for i, line in enumerate(lines):
        if start is None:
            selected = True
        elif not inside:
            selected = inside = bool(re.search(start, line))
        else:  # the range ends with (and includes) the first line after its start matching `end`
            selected, inside = True, not re.search(end, line)
        if selected and re.search(old, line):
            lines[i] = re.sub(old, new.replace("\\/", "/"), line, count=1)
            hits += 1
    return "\n".join(lines), hits


def set_edits() -> list[tuple[str, str]]:
    return [m.groups() for line in code_lines() if "dvc exp run" in line
            for m in SET.finditer(line)]


def lookup(params: dict, dotted: str):
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def test_readme_has_params_examples():
    assert len(sed_edits()) >= 2 and len(set_edits()) >= 2, (sed_edits(), set_edits())


@pytest.mark.parametrize("start, end, old, new", sed_edits())
def test_sed_example_changes_a_real_value(start, end, old, new):
    """`sed -i 's/OLD/NEW/' params.yaml` as the README shows it must match exactly one line and
    leave valid params that differ in exactly one value."""
    text, hits = sed(PARAMS_TEXT, start, end, old, new)
    assert hits == 1, f"the README's sed pattern {old!r} matches {hits} lines of params.yaml"
    edited = yaml.safe_load(text)
    changed = [(s, k) for s in PARAMS for k in PARAMS[s] if PARAMS[s][k] != edited[s][k]]
    assert len(changed) == 1, f"sed {old!r} -> {new!r} changes {changed}"


@pytest.mark.parametrize("key, value", set_edits())
def test_set_example_changes_a_real_value(key, value):
    current = lookup(PARAMS, key)  # KeyError: the README sets a key params.yaml does not have
    assert yaml.safe_load(value) != current, f"-S {key}={value} sets the value params.yaml has"


def test_sample_run_is_the_default_run():
    """The README's `run start` lines say what the default params.yaml runs, unless the block
    says it is a shorter run."""
    starts = re.findall(r"run start: (\w+) on (\S+), (\d+) episodes, (\d+) envs, seed (\d+)", README)
    assert starts, "the README shows no sample run"
    t = PARAMS["train"]
    expected = (t["algo"].upper(), PARAMS["env"]["id"], str(t["episodes"]), str(t["num_envs"]),
                str(t["seed"]))
    assert starts[0] == expected, (starts[0], expected)


def output_folders() -> list[str]:
    """Folders that README commands write: `-o <folder>` / `--out <folder>`."""
    found = []
    for line in code_lines():
        if line.lstrip().startswith("$ ") or line.lstrip().startswith("dvc "):
            found += re.findall(r"(?:\s-o|\s--out)\s+([\w./-]+)", line)
    return sorted(set(found))


def test_readme_output_folders_are_git_ignored():
    folders = output_folders()
    assert "dvc_plots_diff" in folders, folders
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for folder in folders + ["dvc_plots"]:  # `dvc plots show` writes dvc_plots/ by default
        probe = f"{folder.rstrip('/')}/index.html"
        proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", probe], cwd=REPO)
        assert proc.returncode == 0, f"{probe} is not covered by .gitignore"
