"""The contract suite: one set of tests, run against every backend.

Each test takes the ``store`` fixture (``tests/conftest.py``), a connected
``Store`` on a fresh, empty database at the newest schema, once per backend:
``legacy-sqlite``, ``core-sqlite``, ``core-postgresql``, ``core-mysql`` and
``core-mysql-galera`` (a private three-node MariaDB Galera cluster, every
statement on node 1; marker ``galera``).
The tests are written against the repository protocols in
``contextstore.repositories.protocols`` and the rules of
``docs/guide/repositories.md``, through the public ``Store`` API only
(helpers in ``_factories``; the pure-Python model of the rules in
``_oracle``), so they run unchanged on every backend.

Notes for test authors:

* Search tests use distinctive words of at least four letters that are not
  stop words: MariaDB's FULLTEXT index ignores words shorter than its minimum
  token size (3) and InnoDB stop words. Filler messages keep a searched word
  from appearing in every row, except where that is the point.
* Rows with equal timestamps cannot be forced through the public API;
  ``add_many`` batches share one timestamp, which is where keyset pages on
  ``(timestamp, id)`` must neither skip nor repeat a row.
* A test that expects an error also checks that nothing was written
  (``_factories.snapshot`` before and after).
"""
