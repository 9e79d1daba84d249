"""Benchmark contextstore against the raw drivers, the legacy module and the SQLAlchemy ORM.

    uv run python benchmarks/bench.py [--quick] [--dialect sqlite|postgresql|mysql ...]
                                      [--json PATH] [--markdown BENCHMARKS.md] [--chart PATH]

The harness is the ``benchmarks`` package beside this script (also runnable as
``python -m benchmarks``); BENCHMARKS.md explains what each operation does on
each side and records the latest numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    # run as a file, sys.path[0] is benchmarks/ itself: put the repository root
    # there instead, so that `benchmarks` imports as a package (and its modules
    # cannot shadow top-level names)
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
