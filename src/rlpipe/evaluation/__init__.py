"""Evaluating a trained policy (or a baseline) on held-out episodes, without training.

One implementation serves the ``evaluate`` stage (:mod:`rlpipe.evaluation.stage`), the
``rlpipe evaluate`` command and evaluation during training: :func:`rlpipe.evaluation.episodes.
run_episodes` plays the episodes, :func:`rlpipe.evaluation.report.summarize` turns them into the
keys of ``eval/metrics.json``. Seeds of evaluation episodes never overlap the training seeds
(:mod:`rlpipe.evaluation.seeds`).
"""
