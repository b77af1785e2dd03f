"""`pafpose <command>`: parse arguments, call the API, format the output. No logic of its own.

Each command is a module with `add_parser(subparsers)` (its flags) and `run(args) -> int`;
`main` only dispatches, and turns a PafposeError (a user's mistake) into one line, exit 2.
Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import PafposeError
from . import batch, bench, evaluate, models, predict, ros, serve, stop, train, video

#: The command modules, in the order `pafpose --help` lists them.
COMMANDS = (predict, evaluate, bench, models, serve, video, batch, ros, train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="pafpose",
        description="Multi-person 2D pose estimation (heatmaps + Part Affinity Fields) on a "
        "plain CPU. `pafpose COMMAND --help` lists a command's options.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pafpose` command."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # a command may take arguments argparse cannot place (`ros`: NAME:=VALUE anywhere)
        take = getattr(args, "take_extra", None)
        if take is None:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        take(args, extra)
    previous = stop.install()
    try:
        return args.func(args)
    except PafposeError as exc:
        print(f"pafpose: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pafpose: interrupted", file=sys.stderr)
        return stop.interrupted_status()
    finally:
        stop.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
