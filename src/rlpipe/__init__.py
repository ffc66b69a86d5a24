"""rlpipe: reinforcement-learning training as a declarative DVC pipeline."""
__version__ = "0.1.0"


def track(tag: str, value: float) -> None:
    """Record a custom scalar from user code or an environment during training.

    The value reaches ``updates.csv`` (a column named ``tag``) and TensorBoard (``Custom / tag``)
    at the next policy update. Outside a training run the call does nothing.
    """
    from rlpipe.tracking import record

    record(tag, value)
