"""Errors that stage entry points report as one clear line and a non-zero exit."""


class RlpipeError(Exception):
    """A problem the user can fix (bad input file, bad checkpoint, missing output of a stage)."""


class CheckpointError(RlpipeError):
    """A checkpoint that cannot or must not be loaded."""


class InputFileError(RlpipeError):
    """A stage's input file is missing or unreadable; the message names the file and its producer."""
