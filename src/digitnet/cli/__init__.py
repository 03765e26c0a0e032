"""The command line: `digitnet train | evaluate | predict | export | serve | inspect | compare`.

parser.py builds the options from digitnet.settings and digitnet.recipes; commands.py runs them.
Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

from digitnet.cli.commands import (cmd_compare, cmd_evaluate, cmd_export, cmd_inspect, cmd_predict, cmd_serve,
                                   cmd_train)
from digitnet.cli.parser import build_parser
from digitnet.errors import DigitnetError, describe_os_error

__all__ = ["build_parser", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        train_parser = next(a for a in parser._actions if a.dest == "command").choices["train"]
        args.defaults = {a.dest: a.default for a in train_parser._actions}
    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
                "serve": cmd_serve, "inspect": cmd_inspect, "compare": cmd_compare}
    try:
        return handlers[args.command](args)
    except DigitnetError as exc:
        print(f"digitnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitnet: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"digitnet: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1


def run(argv: list[str] | None = None) -> NoReturn:
    """The program (console script, `python -m digitnet`): main(), then leave at once.

    Python's own shutdown of a process that has imported torch takes 0.45-0.7 s (tearing down
    thousands of modules and libtorch's static objects; benchmarks/cli_overheads.py), and a finished
    command needs none of it: its files are closed and fsynced. So the atexit handlers run, the
    streams are flushed, and the process ends with os._exit. Not while a thread that Python would
    wait for is alive.
    """
    code = main(argv)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if run_exit_handlers is None or any(not t.daemon for t in others):
        raise SystemExit(code)
    run_exit_handlers()
    os._exit(_flush_output(code))


def _flush_output(code: int) -> int:
    """Flush stdout and stderr; the exit code, made an error where the output could not be written
    (a full disk), as Python's own exit would (a reader that left, `| head`, is not an error)."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # the reader left, or the stream was closed
        pass
    except OSError as exc:
        print(f"digitnet: error: the output could not be written: {describe_os_error(exc)}", file=sys.stderr)
        code = code or 1
    try:
        sys.stderr.flush()
    except (OSError, ValueError):  # nowhere left to say anything
        pass
    return code
