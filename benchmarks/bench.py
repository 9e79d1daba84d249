"""Benchmark contextstore against the raw drivers and the legacy module.

    uv run python benchmarks/bench.py [--quick] [--dialect sqlite|postgresql|mysql ...]
                                      [--json PATH] [--markdown BENCHMARKS.md]

The implementation lives in ``contextstore._bench``; BENCHMARKS.md explains
what each operation does on each side and records the latest numbers.
"""

from __future__ import annotations

import sys

from contextstore._bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
