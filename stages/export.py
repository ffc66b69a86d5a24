"""DVC stage `export` (deploy/dvc.yaml): checkpoints/best.pt -> policy/policy.onnx + metadata.json.

Reads only the `checkpoint` section of params.yaml. Run from the repository root:
`python stages/export.py [--params params.yaml]`. Needs the `export` extra
(`pip install -e ".[export]"`: onnx, onnxruntime); the default pipeline never runs it.
"""
import sys
from pathlib import Path

# Run the library of the commit this script belongs to, not whichever copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.stage_runner import stage_main

SECTIONS = ("checkpoint",)


def main(argv: list[str] | None = None) -> int:
    return stage_main("export", "Export the run's best checkpoint's policy to ONNX "
                      "(policy/policy.onnx, policy/metadata.json), checked against torch.",
                      SECTIONS, "rlpipe.deploy.stage:run", argv)


if __name__ == "__main__":
    sys.exit(main())
