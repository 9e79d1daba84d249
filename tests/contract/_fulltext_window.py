"""The contract suite's one allowance for a server: InnoDB's full-text sync window.

On MySQL/MariaDB a search can miss a row committed before it started, while
InnoDB moves its full-text cache to the index's tables (the server empties the
cache before it commits what it wrote; see
``tests/dialects/test_innodb_fulltext_window.py``, the canary that fails once
a server no longer does). A 100,000-character message starts such a sync by
itself, so the search right after it can fall in that window.

:func:`search_for_written` is how a test searches for a message it has just
written: on MySQL/MariaDB, a search that misses it is repeated, for up to
:data:`SYNC_WINDOW` seconds, and only after the message itself has read back
unchanged through the same Store (so a write that was lost, or a replica that
had not applied it, still fails the test). Every other dialect gets exactly
one search.
"""

from __future__ import annotations

import asyncio
from typing import Any

from contextstore import Message, SearchHit, Viewer

#: seconds a MySQL/MariaDB search is repeated while it misses a message just
#: written (the window itself lasts a commit: misses cleared within 50 ms here)
SYNC_WINDOW = 2.0


async def search_for_written(
    store: Any, query: str, *, viewer: Viewer, written: Message
) -> list[SearchHit]:
    """``store.messages.search(query, viewer=viewer)``, through InnoDB's sync
    window on MySQL/MariaDB (see the module docstring)."""
    hits: list[SearchHit] = await store.messages.search(query, viewer=viewer)
    if store.dialect != "mysql":
        return hits
    deadline = asyncio.get_running_loop().time() + SYNC_WINDOW
    while written.id not in {hit.message.id for hit in hits}:
        assert await store.messages.get(written.id, viewer=viewer) == written
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
        hits = await store.messages.search(query, viewer=viewer)
    return hits
