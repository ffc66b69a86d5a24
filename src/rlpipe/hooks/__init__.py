"""Hooks: everything the trainer reports goes through these (logs, checkpoints, captures).

They receive the events of :mod:`rlpipe.events`; see :mod:`rlpipe.hooks.base` for the order.
"""
from rlpipe.hooks.base import DISPLAY, PERSIST, RECORD, Hook, HookList

__all__ = ["DISPLAY", "Hook", "HookList", "PERSIST", "RECORD"]
