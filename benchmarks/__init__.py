"""The contextstore benchmark: how fast the core layer is next to the raw drivers and legacy.

Per dialect (SQLite, PostgreSQL, MySQL/MariaDB), the same operations - get,
list and keyset pages, full-text search, agent memory, single and bulk inserts,
concurrent gets on a pool - run on three *subjects* over the same tables: the
bare driver with hand-written SQL (``raw``), the Store on the core backend
(``core``) and, on SQLite, the Store on the legacy backend (``legacy``).
Speed is reported (console, JSON, BENCHMARKS.md), never asserted.

This package is a tool beside the library, not part of it: nothing under
``src/`` imports it, and it names dialects directly because each raw subject
*is* one driver. Run it with ``benchmarks/bench.py`` or ``python -m benchmarks``.

``benchmarks/scaleout.py`` (``python -m benchmarks.scaleout``) measures read
replicas instead: 50 concurrent readers with 0, 1 and 2 PostgreSQL hot
standbys in ``replica_urls``, and what read-your-writes costs.
"""
