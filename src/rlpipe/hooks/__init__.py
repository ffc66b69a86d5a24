"""Hooks: everything the trainer reports goes through these (logs, checkpoints, captures)."""
from rlpipe.hooks.base import CheckpointInfo, EpisodeRecord, Hook, HookList, RunInfo, UpdateRecord

__all__ = ["CheckpointInfo", "EpisodeRecord", "Hook", "HookList", "RunInfo", "UpdateRecord"]
