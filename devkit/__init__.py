"""What tests/, bench/ and scripts/ share (not part of the rlpipe library, never installed):
:mod:`devkit.runs` (tiny params, params.yaml, temporary git + DVC repositories) and
:mod:`devkit.synthetic` (synthetic training outputs for the summarize and visualize stages)."""
