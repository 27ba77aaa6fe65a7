"""``python -m benchmarks [name] [options]``: run one benchmark scenario (default: all)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

NAMES = tuple(
    sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name != "__main__")
)
"""Each scenario is a module of this package with ``main(argv) -> int``."""


def _scenario(name: str) -> Callable[[list[str]], int]:
    module = importlib.import_module(f"benchmarks.{name}")
    run: Callable[[list[str]], int] = module.main
    return run


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m benchmarks [{'|'.join(NAMES)}] [options]   (<name> --help for its options)")
        return 0
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in NAMES:
            print(f"unknown benchmark {name!r}; choose from {', '.join(NAMES)}", file=sys.stderr)
            return 2
        return _scenario(name)(rest)
    status = 0
    for name in NAMES:
        status = _scenario(name)(argv) or status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
