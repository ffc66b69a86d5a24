"""DVC stage `export` (deploy/dvc.yaml): checkpoints/best.pt -> deploy/policy/policy.onnx + metadata.json.

Reads only the `checkpoint` section of params.yaml. `dvc --cd deploy repro` runs it in deploy/
as `python ../stages/export.py --params ../params.yaml --root .. --out policy`. Needs the
`export` extra (`pip install -e ".[export]"`: onnx, onnxruntime); the default pipeline never
runs it.
"""
import sys
from pathlib import Path

# Run the library of the commit this script belongs to, not whichever copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rlpipe.stage_runner import stage_main

SECTIONS = ("checkpoint",)


def main(argv: list[str] | None = None) -> int:
    return stage_main("export", "Export the run's best checkpoint's policy to ONNX "
                      "(<out>/policy.onnx, <out>/metadata.json), checked against torch.",
                      SECTIONS, "rlpipe.deploy.stage:run", argv,
                      options={"--root": (".", "the folder the run's checkpoint.directory is in"),
                               "--out": ("policy", "the folder to write")})


if __name__ == "__main__":
    sys.exit(main())
