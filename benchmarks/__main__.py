"""``python -m benchmarks [name] [options]``: run one benchmark scenario (default: all)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from benchmarks import server

SCENARIOS: dict[str, Callable[[list[str]], int]] = {"server": server.main}


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(
            f"usage: python -m benchmarks [{'|'.join(SCENARIOS)}] [options]   (scenario --help for options)"
        )
        return 0
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in SCENARIOS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
            return 2
        return SCENARIOS[name](rest)
    status = 0
    for run in SCENARIOS.values():
        status = run(argv) or status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
