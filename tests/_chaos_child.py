"""``run_chaos(ChaosConfig(**json.loads(argv[1])))`` in a child process; prints the report as
one JSON line (tests/_background.py ``chaos_child``). List values become tuples."""

from __future__ import annotations

import asyncio
import json
import sys

from bookkeeper.apps.chaos import ChaosConfig, run_chaos


def main(argv: list[str]) -> int:
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(argv[1]).items()}
    report = asyncio.run(run_chaos(ChaosConfig(**config)))
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
