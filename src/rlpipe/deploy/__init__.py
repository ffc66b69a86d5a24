"""Deploying a trained policy: ONNX export (:mod:`~rlpipe.deploy.onnx_export`, needs torch and
the ``onnx`` package) and what the torch-free runtime :mod:`rlpipe.inference` shares with it
(:mod:`~rlpipe.deploy.space_codec`). Importing this package imports nothing heavy."""
