"""Canary for the one allowance the contract suite makes for a server: InnoDB's
full-text sync window on MySQL/MariaDB.

InnoDB keeps the words of newly committed rows in an in-memory cache of the
FULLTEXT index, and a background thread moves them to the index's tables
("sync") each time the cache has grown by a tenth of
``innodb_ft_cache_size`` (800 KB of words by default). At the end of a sync
the server empties the cache and lets go of its lock *before* it commits the
transaction that wrote those words to the index's tables
(``fts_sync_commit`` in ``storage/innobase/fts/fts0fts.cc``). A search that
falls in between finds the words in neither place, and misses rows that were
committed, and visible, before it started. The window is short (a commit), but
a 100,000-character message fills a tenth of the default cache by itself, so
the search that follows it can run during the sync its own write started.

No client can close that window, so contextstore documents it (the Search
section of docs/guide/repositories.md) and the contract suite's
``test_the_biggest_messages_are_stored_and_searchable`` repeats a search on
MySQL/MariaDB that missed the message it just wrote, after checking that the
message itself reads back, for up to ``SYNC_WINDOW`` seconds
(``tests/contract/_fulltext_window.py``). This test fails when the server no
longer shows the window: the allowance can then go.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests._servers import Server

#: seconds to look for one miss; misses came every 0.1-0.5 s on a two-core
#: machine (the first one after 0.15-2.0 s in eight runs, also with the CPUs busy)
BUDGET = 60.0
#: distinct words per row: each row fills more than a tenth of the default
#: cache by itself, so every insert starts a sync
WORDS = 20_000


@pytest.mark.mysql
def test_innodb_fulltext_search_still_misses_committed_rows_while_it_syncs(
    servers: dict[str, Server],
) -> None:
    server = servers["mysql"]
    url = server.create_database()
    database = make_url(url).database

    def connect() -> Any:
        # the test server's own admin connection, committing each statement
        conn = server._mysql_connect(database)
        conn.autocommit(True)
        return conn

    try:
        setup = connect()
        with setup.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE docs (id BIGINT AUTO_INCREMENT PRIMARY KEY, body LONGTEXT NOT NULL,"
                " FULLTEXT (body)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            )
        setup.close()

        committed: list[tuple[int, str]] = []  # (id, marker word) of each acknowledged insert
        stop = threading.Event()
        misses: list[tuple[int, str, int]] = []  # (id, marker, rows with that id seen)
        errors: list[BaseException] = []

        def write() -> None:
            conn = connect()
            try:
                with conn.cursor() as cursor:
                    number = 0
                    while not stop.is_set():
                        marker = f"mark{number:06d}"
                        words = " ".join(f"q{number:x}z{j:x}" for j in range(WORDS))
                        body = f"{marker} {words}"
                        cursor.execute("INSERT INTO docs (body) VALUES (%s)", (body,))
                        committed.append((cursor.lastrowid, marker))
                        number += 1
            except BaseException as exc:
                errors.append(exc)
            finally:
                conn.close()

        def read() -> None:
            conn = connect()
            try:
                with conn.cursor() as cursor:
                    while not stop.is_set():
                        if not committed:
                            time.sleep(0.001)
                            continue
                        row_id, marker = committed[-1]
                        cursor.execute(
                            "SELECT id FROM docs WHERE MATCH (body) AGAINST (%s IN BOOLEAN MODE)",
                            (marker,),
                        )
                        if cursor.fetchall():
                            continue
                        # the row is committed: its insert was acknowledged
                        # before its marker was published, and it reads back
                        cursor.execute("SELECT COUNT(*) FROM docs WHERE id = %s", (row_id,))
                        (visible,) = cursor.fetchone()
                        misses.append((row_id, marker, visible))
                        stop.set()
            except BaseException as exc:
                errors.append(exc)
                stop.set()
            finally:
                conn.close()

        threads = [threading.Thread(target=write), threading.Thread(target=read)]
        for thread in threads:
            thread.start()
        stop.wait(BUDGET)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert misses, (
            f"{len(committed)} rows of {WORDS:,} words inserted in {BUDGET:.0f} s, and a "
            "full-text search never missed the newest: InnoDB may have closed its sync "
            "window; if so, remove tests/contract/_fulltext_window.py's allowance and the "
            "note in docs/guide/repositories.md"
        )
        row_id, marker, visible = misses[0]
        assert visible == 1, f"row {row_id} ({marker}) was not visible either"
    finally:
        server.drop_database(url)
