"""The one shape of every stage entry point, and one clear message for every user error.

Each ``stages/<name>.py`` calls :func:`stage_main` with the params sections it reads and its
library's ``run(sections, **flags) -> int``; nothing else happens in the script.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

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


def stage_main(name: str, description: str, sections: Sequence[str], run: str,
               argv: list[str] | None = None, flags: dict[str, str] | None = None,
               options: dict[str, tuple[str, str]] | None = None) -> int:
    """Parse ``--params``, boolean ``flags`` (option -> help) and valued ``options`` (option ->
    (default, help)), read and validate only the named ``sections`` of the params file, then call
    ``run`` (``"module:function"``, imported only now, so ``--help`` and bad params answer fast)
    as ``run(sections, **flags, **options)``."""
    parser = argparse.ArgumentParser(prog=f"python stages/{name}.py", description=description)
    parser.add_argument("--params", default="params.yaml", metavar="PATH",
                        help=f"parameters file; only its sections {', '.join(sections)} are read "
                             "(default: %(default)s)")
    for flag, text in (flags or {}).items():
        parser.add_argument(flag, action="store_true", help=text)
    for option, (default, text) in (options or {}).items():
        parser.add_argument(option, default=default, help=f"{text} (default: %(default)s)")
    args = parser.parse_args(argv)

    def main() -> int:
        from rlpipe.config import load_sections

        loaded = load_sections(args.params, tuple(sections))
        module, _, func = run.partition(":")
        names = [f.lstrip("-").replace("-", "_") for f in (*(flags or {}), *(options or {}))]
        return getattr(importlib.import_module(module), func)(
            loaded, **{n: getattr(args, n) for n in names})

    return run_stage(name, main)


def exit_now(code: int) -> None:
    """Leave with ``code`` without the interpreter's teardown of torch's modules (measured
    2-4.5 s on a loaded 2-core machine: a stopped run would take that long to exit after its
    work was done). Every output is closed by then; the atexit handlers still run and the
    standard streams are flushed."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
