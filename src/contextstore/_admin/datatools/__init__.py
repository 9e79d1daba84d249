"""Data tools: copy a database into another, back up to and restore from a portable dump.

Modules: :mod:`.tables` (table specs, value kinds, canonical rows, checksums),
:mod:`.reader` (keyset batches), :mod:`.copy` (copy, verify, checksums and the
database checks they share with restore), :mod:`.dump` (the dump file: backup,
restore, inspect).

Policy shared by every tool here:

* **Tables**: contextstore's own, and only those: a service's tables beside
  them, its Alembic history (``alembic_version``) and contextstore's version
  table are never copied, dumped or restored (the target's revision is
  recorded by its own migration, in ``contextstore_version``). They are
  handled parents first (:data:`TABLES`); each table is read in
  primary-key order by keyset batches (``WHERE pk > last ORDER BY pk LIMIT n``),
  so every statement is short and no cursor or connection is held between
  batches, nothing ever loads a whole table, and parents come before
  children (``messages.parent_message_id`` points to a smaller id).
  Batches hold at most ``batch_size`` rows and roughly :data:`MAX_BATCH_CHARS`
  characters of row data, whichever is less.
* **Columns**: every column of ``contextstore.schema`` except generated ones
  (``agent_memory.scope``) and derived ones (:data:`.tables.DERIVED`:
  ``messages.search_text``, the words search finds a message by), which are
  neither read nor dumped nor checksummed: each inserted row gets its
  ``search_text`` computed from its content again, by the same
  normalisation as every other writer. The full-text objects are not in the
  schema and are maintained by the target database itself over
  ``search_text``: the FTS5 triggers index each inserted row on SQLite, the
  ``tsvector`` column is computed by PostgreSQL, the FULLTEXT index by
  MariaDB. Ids and timestamps are written as read.
* **Checksum** of a table: SHA-256 over, for every row in primary-key order,
  the UTF-8 of its canonical JSON object followed by ``\\n``. Canonical JSON:
  compact, keys sorted, non-ASCII kept; datetimes as aware UTC ISO 8601 with
  microseconds (``2025-01-02T03:04:05.123456+00:00``); JSON columns as their
  value with integral numbers written as integers (before revision 0003,
  PostgreSQL's ``jsonb`` columns stored ``1e+20`` as ``100000000000000000000``,
  the same number: such databases, and dumps made from them, still verify
  against any other). It is computed from decoded values, so it is the same on
  every dialect.
* **Target writes** (``--force`` clearing, every insert, and the verification
  read-back) run in one transaction on the target: a copy or restore that
  fails or does not verify leaves the target's rows as they were (the schema
  migration before it stays). Sequences and auto-increment counters are
  moved past the copied ids after the commit.
* **Non-empty target**: refused before anything is written (not even a
  migration) unless ``force``; with ``force`` its rows are deleted, children
  first, inside that same transaction.
* **Statement timeout**: none on the tools' own connections (see ``_opened``).
* **Source**: must be at the newest schema revision, or at one the tools read
  as the newest (``copy.READ_AS_NEWEST``: the same tables, columns and
  values; a dump's header revision likewise); an unstamped file created by an
  older legacy release (the baseline schema) is read as it is (never
  modified) when it has every column the tools read, derived ones aside.
  Copies and backups read table after table: stop
  the writers first for a consistent result across tables.

Dump format (``contextstore-dump``, version :data:`DUMP_FORMAT_VERSION`): a
gzip-compressed UTF-8 text file, one JSON object per line:

1. header: ``{"format", "format_version", "schema_revision",
   "contextstore_version", "created_at", "dialect", "tables": {table:
   [columns]}}``;
2. one line per row, tables in :data:`TABLES` order, rows in primary-key
   order: ``{"table": name, "row": {column: value}}``, values encoded as for
   the checksum but JSON numbers kept as read;
3. trailer: ``{"trailer": {"rows": {table: count}, "sha256": {table: hex}}}``.

A restore reads the whole file once to check it (header, every row, trailer
counts and checksums) before touching the target, then again to load it.
"""

from __future__ import annotations

from .copy import copy_database, table_checksums, verify_databases
from .dump import DUMP_FORMAT, DUMP_FORMAT_VERSION, DumpInfo, backup, inspect_dump, restore
from .reader import DEFAULT_BATCH_SIZE, MAX_BATCH_CHARS, ProgressSink
from .tables import TABLES, DataReport, TableCheck, TableDigest

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DUMP_FORMAT",
    "DUMP_FORMAT_VERSION",
    "MAX_BATCH_CHARS",
    "TABLES",
    "DataReport",
    "DumpInfo",
    "ProgressSink",
    "TableCheck",
    "TableDigest",
    "backup",
    "copy_database",
    "inspect_dump",
    "restore",
    "table_checksums",
    "verify_databases",
]
