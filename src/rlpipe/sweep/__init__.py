"""Sweeps: seeds x a grid of settings, each trial one full training run, scheduled by Ray.

Modules, in the order a sweep uses them:

* :mod:`rlpipe.sweep.grid`      the ``sweep`` section -> validated trials (pure)
* :mod:`rlpipe.sweep.records`   trial folders on the driver: finished or not, ``trial.json``
* :mod:`rlpipe.sweep.files`     a trial folder as bytes: pack, unpack, changes, atomic apply
* :mod:`rlpipe.sweep.trial`     one trial on a worker: unpack, train, send checkpoints home
* :mod:`rlpipe.sweep.store`     the actor on the driver's node that writes trial folders
* :mod:`rlpipe.sweep.cluster`   start or join Ray (bounded wait, one-line errors)
* :mod:`rlpipe.sweep.driver`    schedule trials, retry failures, record attempts
* :mod:`rlpipe.sweep.aggregate` trial folders -> episodes table, per-setting metrics
* :mod:`rlpipe.sweep.figures`   seaborn figures across seeds
* :mod:`rlpipe.sweep.stage`     the stage: plan, skip finished trials, run, aggregate, write

Only ``cluster``, ``driver`` and the Ray task wrappers import ``ray``; only ``aggregate`` and
``figures`` import pandas/seaborn. The design and its trade-offs: docs/SWEEPS.md.
"""
