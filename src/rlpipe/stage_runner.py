"""Shared entry-point wrapper: one clear message and a non-zero exit for every user error."""
from __future__ import annotations

import sys
from typing import Callable

from rlpipe.config import ConfigError
from rlpipe.errors import RlpipeError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_stage(name: str, main: Callable[[], int | None]) -> int:
    """Run ``main``; turn config/input errors into ``error: ...`` on stderr and exit code 2."""
    try:
        code = main()
    except ConfigError as e:
        print(f"{name}: error in params: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except RlpipeError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(code or 0)
