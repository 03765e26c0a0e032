"""The command line: `digitnet train | evaluate | predict | export | serve`.

parser.py builds the options from digitnet.settings and digitnet.recipes; commands.py runs them.
Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import sys

from digitnet.cli.commands import cmd_evaluate, cmd_export, cmd_predict, cmd_serve, cmd_train
from digitnet.cli.parser import build_parser
from digitnet.errors import DigitnetError

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        train_parser = next(a for a in parser._actions if a.dest == "command").choices["train"]
        args.defaults = {a.dest: a.default for a in train_parser._actions}
    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
                "serve": cmd_serve}
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


def describe_os_error(exc: OSError) -> str:
    """One line for a failed read or write: what, why, and the fix."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (f"{where}no space left on device; free some space or write the run elsewhere with --out "
                "(files already saved are intact)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{exc.strerror}; choose a folder you can write to (--out)"
    return f"{where}{exc.strerror or exc}"
