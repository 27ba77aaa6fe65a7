"""`make demo`: the embedded API server and an example operator converging real resources."""

from __future__ import annotations

import sys


def main() -> int:
    print("kubevisor: the embedded API server is being built (issue #2); the demo arrives with it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
