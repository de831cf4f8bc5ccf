"""The ``bookkeeper`` command line.

Exit status: 0 success; 1 verification failed (the report says which check); 2 usage error
or unreadable input (a clear message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import orjson

from .errors import UsageError


def _parser() -> argparse.ArgumentParser:
    from bookkeeper.adapters import VENUES

    p = argparse.ArgumentParser(prog="bookkeeper", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("replay", help="verify a recorded session offline",
                       description="Replay recorded exchange frames through the venue adapter and the book "
                                   "state machine; report checksums, gaps, crossed books and parse errors.")
    r.add_argument("--venue", required=True, choices=VENUES, metavar="VENUE",
                   help="one of: " + ", ".join(VENUES))
    r.add_argument("files", nargs="+", metavar="FILE", help="recording files of one session (gzip ok)")
    r.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    return p


def _cmd_replay(args: argparse.Namespace) -> int:
    from bookkeeper.adapters import get_adapter

    from .io.replay import format_table, replay, stderr_progress

    progress = None if args.json else stderr_progress()
    report = replay(get_adapter(args.venue), args.files, progress=progress)
    if progress is not None:
        sys.stderr.write("\n")
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_json()).decode() + "\n")
    else:
        print(format_table(report))
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _cmd_replay(args)
    except UsageError as exc:
        print(f"bookkeeper {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
