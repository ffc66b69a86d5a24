"""The summarize stage's library: training CSV files -> typed Parquet, metrics.json, plot series.

- :mod:`rlpipe.summarize.tables`: CSV -> typed Arrow tables / Parquet (chunked, damage rules).
- :mod:`rlpipe.summarize.metrics`: pure, tables -> the ``metrics.json`` dictionary.
- :mod:`rlpipe.summarize.series`: pure, tables -> downsampled smoothed series for DVC plots.
- :mod:`rlpipe.summarize.stage`: paths in, files out (atomic, all-or-nothing).

Nothing here imports torch, pandas or matplotlib; importing this package imports nothing at all.
"""
