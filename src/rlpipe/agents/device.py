"""Where the networks and update batches live (``train.device``), and device-free checkpoint state.

Environments always run on the CPU; only the networks, the batches they read and the update's
tensors go to the device. Checkpoints hold CPU tensors only (:func:`to_cpu`), so any checkpoint
loads on any machine. See docs/DEVICES.md for what determinism holds on CUDA.
"""
from __future__ import annotations

from typing import Any

import torch

from rlpipe.config import ConfigError


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is usable, else ``cpu``; ``cuda``/``cuda:N`` must exist.

    Raises :class:`~rlpipe.config.ConfigError` naming ``train.device`` when the asked-for GPU is
    not there (the params are wrong for this machine).
    """
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device: {setting!r} asks for a GPU, but torch sees no CUDA "
                          f"device here (torch {torch.__version__}); use 'cpu' or 'auto'")
    device = torch.device(setting)
    index = 0 if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"train.device: {setting!r} does not exist; this machine has {count} "
                          f"CUDA device(s) (cuda:0 to cuda:{count - 1})")
    return device


def describe_device(device: torch.device) -> str:
    """e.g. ``cuda:0 (NVIDIA H200)`` or ``cpu``."""
    if device.type != "cuda":
        return str(device)
    index = torch.cuda.current_device() if device.index is None else device.index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def to_cpu(obj: Any) -> Any:
    """A copy of nested dicts/lists/tuples with every tensor moved to the CPU (others unchanged)."""
    if torch.is_tensor(obj):
        return obj.detach().cpu() if obj.device.type != "cpu" else obj
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(v) for v in obj)
    return obj
