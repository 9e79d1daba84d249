"""What the topology fixtures tell the backend fixture in ``tests/conftest.py``."""

from __future__ import annotations

#: a fresh database's URL -> the URLs of the same database on the servers that
#: serve its reads (PostgreSQL standbys, Galera nodes 2 and 3)
REPLICA_URLS: dict[str, list[str]] = {}
