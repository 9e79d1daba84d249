"""``python -m benchmarks [--quick] [--dialect D ...] [--json PATH] [--markdown PATH]``.

Also ``[--chart PATH]`` and the plan overrides; ``--help`` lists them.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
